"""Independent reference for the C++ SAM (Segment Anything) parity test.

Plain-torch transcription of the inference path AutoMM runs: AutoGluon's fork
multimodal/src/autogluon/multimodal/models/custom_hf_models/modeling_sam_for_conv_lora.py
and models/sam.py (SAMForSemanticSegmentation) at autogluon/autogluon commit
f34ebb4f664c7d632a8ea7db1de74bdfc64c3625 (layers as transformers' models/sam/modeling_sam.py;
config defaults from transformers' configuration_sam.py). Left out: LoRA / conv-LoRA,
point / box / mask prompts (AutoMM passes none), dropout, attention / hidden-state outputs.

Per CASE reads DIR/CASE/config.json (SamConfig dict: vision_config, prompt_encoder_config,
mask_decoder_config, missing keys from *_DEFAULTS below; prompt_encoder image_embedding_size
is always image_size // patch_size as in HF; plus "automm": {"num_mask_tokens": T,
"num_classes": K, "image_size": S}, defaults 1, 1 and vision image_size),
weights.safetensors (HF layout at the config's sizes), inputs.safetensors (pixel_values
[B, 3, S, S]; optionally mask_tokens [T, C], which replace the adapted tokens (the
copies of token 0) before AutoMM's forward; for K > 1 classifier_weight [K+1, C] and classifier_bias [K+1] of
output_classifier_mlps), and writes outputs.safetensors, float32
(g = S // patch_size, C = mask decoder hidden_size, D = vision hidden_size):
  vision_patch_embed [B, g, g, D] (patch_embed + pos_embed); vision_layer{i} [B, g, g, D] (every layer i)
  image_embeddings [B, C, g, g] (encoder + neck); image_pe [1, C, g, g] (HF repeats it to B)
  dense_embeddings [1, C, g, g] (no_mask_embed broadcast; batch 1 as in HF without prompts)
  hf_pred_masks [B, 1, 1, 4g, 4g], hf_iou_scores [B, 1, 1]: unmodified SamModel, multimask_output=False
  automm_low_res_masks [B, T, 4g, 4g] (pred_masks[:, 0]); automm_logits [B, T, S, S] (bilinear,
  align_corners=False); automm_class_logits [B, T, K+1] (only when K > 1)

Weights key rule (tied embedding): HF shares one SamPositionalEmbedding as shared_image_embedding
and prompt_encoder.shared_embedding, so state_dict() lists it under both names. weights.safetensors
holds exactly SamModel(config).state_dict()'s keys MINUS "prompt_encoder.shared_embedding.positional_embedding"
(as save_pretrained keeps it); if that duplicate is written anyway it must equal
"shared_image_embedding.positional_embedding". Everything else loads strictly.

Image size rule: weights load strictly at vision_config.image_size (g0 = that // patch). When S
differs they are then resampled to g = S // patch: pos_embed [1, g0, g0, D] by F.interpolate
bicubic, align_corners=False, over (g0, g0); rel_pos_h / rel_pos_w of the GLOBAL-attention layers
(global_attn_indexes) by F.interpolate linear, align_corners=False, to 2g - 1 rows (windowed
layers keep theirs; get_rel_pos would interpolate the same way on the fly); the prompt
encoder's image_embedding_size becomes g. hf_* come after this resampling, before AutoMM's change.

Quirks kept: vision and decoder-block LayerNorms use layer_norm_eps (1e-6), the neck's and
upscale_layer_norm's channels-first LayerNorms 1e-6 (computed by hand: mean, biased variance,
sqrt(var + eps)), but transformer.layer_norm_final_attn nn.LayerNorm's default 1e-5. The blocks'
cross attentions always downsample by 2 (SamTwoWayAttentionBlock's default argument); only
final_attn_token_to_image uses attention_downsample_rate. Sparse embeddings are zeros [1, 1, 1, C],
appended after the iou + mask tokens only if their sum() != 0 (never here). Windowed attention
zero-pads after layer_norm1 and the padded tokens are attended to (no mask). Binary AutoMM
(K == 1) runs HF's decoder forward, which loops over num_mask_tokens hypernetwork MLPs while
AutoMM keeps one, so it needs T == 1.

Usage: /usr/bin/python3 sam_reference.py DIR CASE [CASE ...]   (needs torch 1.13, numpy)
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from reference_common import run_reference_cases

VISION_DEFAULTS = dict(hidden_size=768, output_channels=256, num_hidden_layers=12, num_attention_heads=12,
                       num_channels=3, image_size=1024, patch_size=16, hidden_act="gelu", layer_norm_eps=1e-6,
                       attention_dropout=0.0, initializer_range=1e-10, qkv_bias=True, mlp_ratio=4.0,
                       use_abs_pos=True, use_rel_pos=True, window_size=14, global_attn_indexes=[2, 5, 8, 11],
                       num_pos_feats=128, mlp_dim=None)
PROMPT_DEFAULTS = dict(hidden_size=256, image_size=1024, patch_size=16, mask_input_channels=16,
                       num_point_embeddings=4, hidden_act="gelu", layer_norm_eps=1e-6)
DECODER_DEFAULTS = dict(hidden_size=256, hidden_act="relu", mlp_dim=2048, num_hidden_layers=2, num_attention_heads=8,
                        attention_downsample_rate=2, num_multimask_outputs=3, iou_head_depth=3,
                        iou_head_hidden_dim=256, layer_norm_eps=1e-6)
TIED = "prompt_encoder.shared_embedding.positional_embedding"
ACT = {"gelu": F.gelu, "relu": F.relu, "silu": F.silu, "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x)}


class ChannelsFirstLayerNorm(nn.Module):  # SamLayerNorm(data_format="channels_first") on [B, C, H, W]
    def __init__(self, n, eps=1e-6):
        super().__init__()
        self.weight, self.bias, self.eps = nn.Parameter(torch.ones(n)), nn.Parameter(torch.zeros(n)), eps

    def forward(self, x):
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        return self.weight[:, None, None] * ((x - u) / torch.sqrt(s + self.eps)) + self.bias[:, None, None]


class MLPBlock(nn.Module):  # SamMLPBlock
    def __init__(self, c):
        super().__init__()
        self.lin1, self.lin2, self.act = nn.Linear(c["hidden_size"], c["mlp_dim"]), \
            nn.Linear(c["mlp_dim"], c["hidden_size"]), ACT[c["hidden_act"]]

    def forward(self, x):
        return self.lin2(self.act(self.lin1(x)))


def get_rel_pos(q_size, k_size, rel_pos):  # rel_pos [L, hd] -> [q_size, k_size, hd]
    max_rel_dist = int(2 * max(q_size, k_size) - 1)
    resized = F.interpolate(rel_pos.reshape(1, rel_pos.shape[0], -1).permute(0, 2, 1), size=max_rel_dist,
                            mode="linear").reshape(-1, max_rel_dist).permute(1, 0)
    q_coords = torch.arange(q_size)[:, None] * max(k_size / q_size, 1.0)
    k_coords = torch.arange(k_size)[None, :] * max(q_size / k_size, 1.0)
    return resized[((q_coords - k_coords) + (k_size - 1) * max(q_size / k_size, 1.0)).long()]


class VisionAttention(nn.Module):  # SamVisionAttention; window_size 0 = global over the g x g grid
    def __init__(self, c, window_size):
        super().__init__()
        size = c["image_size"] // c["patch_size"] if window_size == 0 else window_size
        self.heads, head_dim = c["num_attention_heads"], c["hidden_size"] // c["num_attention_heads"]
        self.scale = head_dim ** -0.5
        self.qkv = nn.Linear(c["hidden_size"], 3 * c["hidden_size"], bias=c["qkv_bias"])
        self.proj = nn.Linear(c["hidden_size"], c["hidden_size"])
        self.use_rel_pos = c["use_rel_pos"]
        if self.use_rel_pos:
            self.rel_pos_h = nn.Parameter(torch.zeros(2 * size - 1, head_dim))
            self.rel_pos_w = nn.Parameter(torch.zeros(2 * size - 1, head_dim))

    def forward(self, x):  # [b, h, w, D] (b = batch * windows)
        b, h, w, _ = x.shape
        qkv = self.qkv(x).reshape(b, h * w, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.reshape(3, b * self.heads, h * w, -1).unbind(0)  # each [b*heads, hw, hd]
        attn = (q * self.scale) @ k.transpose(-2, -1)  # [b*heads, hw, hw]
        if self.use_rel_pos:  # decomposed relative positions (mvitv2)
            rh, rw = get_rel_pos(h, h, self.rel_pos_h), get_rel_pos(w, w, self.rel_pos_w)  # [h, h, hd], [w, w, hd]
            rq = q.reshape(b * self.heads, h, w, -1)
            rel_h = torch.einsum("bhwc,hkc->bhwk", rq, rh)
            rel_w = torch.einsum("bhwc,wkc->bhwk", rq, rw)
            attn = (attn.reshape(-1, h, w, h, w) + rel_h[:, :, :, :, None] + rel_w[:, :, :, None, :])
            attn = attn.reshape(-1, h * w, h * w)
        attn = F.softmax(attn, dim=-1, dtype=torch.float32).to(q.dtype)
        out = (attn @ v).reshape(b, self.heads, h, w, -1).permute(0, 2, 3, 1, 4).reshape(b, h, w, -1)
        return self.proj(out)


class VisionLayer(nn.Module):  # SamVisionLayer
    def __init__(self, c, window_size):
        super().__init__()
        self.window_size = window_size
        self.layer_norm1 = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])
        self.attn = VisionAttention(c, window_size)
        self.layer_norm2 = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])
        self.mlp = MLPBlock(c)

    def forward(self, x):  # [B, g, g, D]
        ws, residual = self.window_size, x
        x = self.layer_norm1(x)
        if ws > 0:  # pad bottom / right with zeros to multiples of ws, split into [B*nw, ws, ws, D]
            bsz, h, w, d = x.shape
            x = F.pad(x, (0, 0, 0, (ws - w % ws) % ws, 0, (ws - h % ws) % ws))
            ph, pw = x.shape[1], x.shape[2]
            x = x.reshape(bsz, ph // ws, ws, pw // ws, ws, d).permute(0, 1, 3, 2, 4, 5).reshape(-1, ws, ws, d)
        x = self.attn(x)
        if ws > 0:  # merge windows, drop the padding
            x = x.reshape(bsz, ph // ws, pw // ws, ws, ws, -1).permute(0, 1, 3, 2, 4, 5).reshape(bsz, ph, pw, -1)
            x = x[:, :h, :w, :]
        x = residual + x
        return x + self.mlp(self.layer_norm2(x))


class Neck(nn.Module):  # SamVisionNeck
    def __init__(self, c):
        super().__init__()
        d, o = c["hidden_size"], c["output_channels"]
        self.conv1, self.layer_norm1 = nn.Conv2d(d, o, 1, bias=False), ChannelsFirstLayerNorm(o)
        self.conv2, self.layer_norm2 = nn.Conv2d(o, o, 3, padding=1, bias=False), ChannelsFirstLayerNorm(o)

    def forward(self, x):  # [B, g, g, D] -> [B, out, g, g]
        return self.layer_norm2(self.conv2(self.layer_norm1(self.conv1(x.permute(0, 3, 1, 2)))))


class VisionEncoder(nn.Module):  # SamVisionEncoder
    def __init__(self, c):
        super().__init__()
        g = c["image_size"] // c["patch_size"]
        self.patch_embed = nn.Module()  # SamPatchEmbeddings holds just the conv
        self.patch_embed.projection = nn.Conv2d(c["num_channels"], c["hidden_size"], c["patch_size"],
                                                stride=c["patch_size"])
        if c["use_abs_pos"]:
            self.pos_embed = nn.Parameter(torch.zeros(1, g, g, c["hidden_size"]))
        self.layers = nn.ModuleList([VisionLayer(c, 0 if i in c["global_attn_indexes"] else c["window_size"])
                                     for i in range(c["num_hidden_layers"])])
        self.neck = Neck(c)

    def forward(self, pixel_values, record):
        x = self.patch_embed.projection(pixel_values).permute(0, 2, 3, 1)  # [B, g, g, D]
        if hasattr(self, "pos_embed"):
            x = x + self.pos_embed
        record["vision_patch_embed"] = x
        for i, layer in enumerate(self.layers):
            x = record["vision_layer%d" % i] = layer(x)
        return self.neck(x)


class PositionalEmbedding(nn.Module):  # SamPositionalEmbedding (random Fourier features)
    def __init__(self, c):
        super().__init__()
        self.positional_embedding = nn.Parameter(torch.zeros(2, c["num_pos_feats"]))

    def forward(self, coords):  # [..., 2] in [0, 1] -> [..., 2 * num_pos_feats]
        coords = 2 * math.pi * ((2 * coords - 1) @ self.positional_embedding)
        return torch.cat([torch.sin(coords), torch.cos(coords)], dim=-1)


class MaskEmbedding(nn.Module):  # SamMaskEmbedding: parameters only (no mask prompts)
    def __init__(self, c):
        super().__init__()
        m = c["mask_input_channels"]
        self.conv1 = nn.Conv2d(1, m // 4, 2, stride=2)
        self.conv2 = nn.Conv2d(m // 4, m, 2, stride=2)
        self.conv3 = nn.Conv2d(m, c["hidden_size"], 1)
        self.layer_norm1 = ChannelsFirstLayerNorm(m // 4, c["layer_norm_eps"])
        self.layer_norm2 = ChannelsFirstLayerNorm(m // 4 * 4, c["layer_norm_eps"])


class PromptEncoder(nn.Module):  # SamPromptEncoder, promptless path
    def __init__(self, c, shared):
        super().__init__()
        self.shared_embedding = shared  # tied: same module as SamModel.shared_image_embedding
        self.mask_embed = MaskEmbedding(c)
        self.no_mask_embed = nn.Embedding(1, c["hidden_size"])
        self.image_embedding_size = c["image_size"] // c["patch_size"]  # HF recomputes it, ignoring the json
        self.point_embed = nn.ModuleList([nn.Embedding(1, c["hidden_size"]) for _ in range(c["num_point_embeddings"])])
        self.not_a_point_embed = nn.Embedding(1, c["hidden_size"])
        self.hidden_size = c["hidden_size"]

    def forward(self):  # no points / boxes / masks: batch_size stays 1
        g = self.image_embedding_size
        dense = self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(1, -1, g, g)  # [1, C, g, g]
        return torch.zeros(1, 1, 1, self.hidden_size), dense  # sparse [1, 1, 1, C]


class Attention(nn.Module):  # SamAttention of the mask decoder, inputs [b, P, n, C]
    def __init__(self, c, downsample_rate=None):
        super().__init__()
        inner = c["hidden_size"] // (c["attention_downsample_rate"] if downsample_rate is None else downsample_rate)
        self.heads = c["num_attention_heads"]
        assert inner % self.heads == 0, "num_attention_heads must divide hidden_size"
        self.q_proj, self.k_proj = nn.Linear(c["hidden_size"], inner), nn.Linear(c["hidden_size"], inner)
        self.v_proj, self.out_proj = nn.Linear(c["hidden_size"], inner), nn.Linear(inner, c["hidden_size"])

    def forward(self, query, key, value):
        def heads(x):  # [b, P, n, inner] -> [b*P, heads, n, inner/heads]
            return x.reshape(-1, x.shape[2], self.heads, x.shape[3] // self.heads).transpose(1, 2)
        lead = query.shape[:2]
        q, k, v = heads(self.q_proj(query)), heads(self.k_proj(key)), heads(self.v_proj(value))
        attn = torch.softmax(q @ k.permute(0, 1, 3, 2) / math.sqrt(q.shape[-1]), dim=-1)
        out = (attn @ v).transpose(1, 2)  # [b*P, n, heads, ch]
        return self.out_proj(out.reshape(*lead, out.shape[1], -1))


class TwoWayBlock(nn.Module):  # SamTwoWayAttentionBlock
    def __init__(self, c, skip_first_layer_pe):
        super().__init__()
        eps = c["layer_norm_eps"]
        self.self_attn = Attention(c, downsample_rate=1)
        self.layer_norm1 = nn.LayerNorm(c["hidden_size"], eps=eps)
        self.cross_attn_token_to_image = Attention(c, downsample_rate=2)  # block default, not the config's
        self.layer_norm2 = nn.LayerNorm(c["hidden_size"], eps=eps)
        self.mlp = MLPBlock(c)
        self.layer_norm3 = nn.LayerNorm(c["hidden_size"], eps=eps)
        self.layer_norm4 = nn.LayerNorm(c["hidden_size"], eps=eps)
        self.cross_attn_image_to_token = Attention(c, downsample_rate=2)
        self.skip_first_layer_pe = skip_first_layer_pe

    def forward(self, queries, keys, query_pe, key_pe):  # queries [b, 1, n, C], keys [b, 1, hw, C]
        if self.skip_first_layer_pe:
            queries = self.self_attn(queries, queries, queries)  # replaces queries, no residual
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q, q, queries)
        queries = self.layer_norm1(queries)
        queries = self.layer_norm2(queries + self.cross_attn_token_to_image(queries + query_pe, keys + key_pe, keys))
        queries = self.layer_norm3(queries + self.mlp(queries))
        keys = self.layer_norm4(keys + self.cross_attn_image_to_token(keys + key_pe, queries + query_pe, queries))
        return queries, keys


class TwoWayTransformer(nn.Module):  # SamTwoWayTransformer
    def __init__(self, c):
        super().__init__()
        self.layers = nn.ModuleList([TwoWayBlock(c, i == 0) for i in range(c["num_hidden_layers"])])
        self.final_attn_token_to_image = Attention(c)
        self.layer_norm_final_attn = nn.LayerNorm(c["hidden_size"])  # eps 1e-5 (quirk)

    def forward(self, point_embeddings, image_embeddings, image_pe):  # [b, 1, n, C], [b, C, g, g], [b, C, g, g]
        keys = image_embeddings.flatten(2).permute(0, 2, 1).unsqueeze(1)  # [b, 1, g*g, C]
        key_pe = image_pe.flatten(2).permute(0, 2, 1).unsqueeze(1)
        queries = point_embeddings
        for layer in self.layers:
            queries, keys = layer(queries, keys, point_embeddings, key_pe)
        attn = self.final_attn_token_to_image(queries + point_embeddings, keys + key_pe, keys)
        return self.layer_norm_final_attn(queries + attn), keys


class FeedForward(nn.Module):  # SamFeedForward (ReLU), sigmoid_output False everywhere in SAM
    def __init__(self, d_in, d_hidden, d_out, num_layers, sigmoid_output=False):
        super().__init__()
        self.proj_in, self.proj_out = nn.Linear(d_in, d_hidden), nn.Linear(d_hidden, d_out)
        self.layers = nn.ModuleList([nn.Linear(d_hidden, d_hidden) for _ in range(num_layers - 2)])
        self.sigmoid_output = sigmoid_output

    def forward(self, x):
        x = F.relu(self.proj_in(x))
        for layer in self.layers:
            x = F.relu(layer(x))
        x = self.proj_out(x)
        return torch.sigmoid(x) if self.sigmoid_output else x


class MaskDecoder(nn.Module):  # SamMaskDecoder
    def __init__(self, c):
        super().__init__()
        C = self.hidden_size = c["hidden_size"]
        self.num_mask_tokens = c["num_multimask_outputs"] + 1
        self.iou_token = nn.Embedding(1, C)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, C)
        self.transformer = TwoWayTransformer(c)
        self.upscale_conv1 = nn.ConvTranspose2d(C, C // 4, kernel_size=2, stride=2)
        self.upscale_conv2 = nn.ConvTranspose2d(C // 4, C // 8, kernel_size=2, stride=2)
        self.upscale_layer_norm = ChannelsFirstLayerNorm(C // 4)  # eps 1e-6
        self.output_hypernetworks_mlps = nn.ModuleList([FeedForward(C, C, C // 8, 3)
                                                        for _ in range(self.num_mask_tokens)])
        self.iou_prediction_head = FeedForward(C, c["iou_head_hidden_dim"], self.num_mask_tokens, c["iou_head_depth"])
        self.multi_class = False  # AutoMM's multi_class_mask_decoder_forward when True

    def forward(self, image_embeddings, image_pe, sparse, dense, multimask_output):
        b, C, h, w = image_embeddings.shape
        P, T = sparse.shape[1], self.num_mask_tokens
        tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0).repeat(b, P, 1, 1)  # [b,P,1+T,C]
        if sparse.sum().item() != 0:  # never true without prompts
            tokens = torch.cat((tokens, sparse), dim=2)
        image_embeddings = (image_embeddings + dense).repeat(P, 1, 1, 1)
        queries, keys = self.transformer(tokens, image_embeddings, image_pe.repeat(P, 1, 1, 1))
        iou_out, mask_out = queries[:, :, 0, :], queries[:, :, 1:1 + T, :]  # [b,P,C], [b,P,T,C]
        x = keys.transpose(2, 3).reshape(b * P, C, h, w)
        x = F.gelu(self.upscale_layer_norm(self.upscale_conv1(x)))  # [b*P, C/4, 2h, 2w]
        x = F.gelu(self.upscale_conv2(x))  # [b*P, C/8, 4h, 4w]
        if self.multi_class:  # one shared MLP for all T tokens
            hyper = self.output_hypernetworks_mlps[0](mask_out)
        else:
            hyper = torch.stack([self.output_hypernetworks_mlps[i](mask_out[:, :, i, :]) for i in range(T)], dim=2)
        masks = (hyper @ x.reshape(b, P, x.shape[1], -1)).reshape(b, P, -1, x.shape[2], x.shape[3])  # [b,P,T,4h,4w]
        iou = self.iou_prediction_head(iou_out)  # [b, P, original num_mask_tokens]
        if self.multi_class:
            return masks, iou, self.output_classifier_mlps(mask_out).reshape(b, P, -1, self.num_classes + 1)
        keep = slice(1, None) if multimask_output else slice(0, 1)
        return masks[:, :, keep], iou[:, :, keep]


class SamModel(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.vc = v = dict(VISION_DEFAULTS, **config.get("vision_config", {}))
        if v["mlp_dim"] is None:
            v["mlp_dim"] = int(v["hidden_size"] * v["mlp_ratio"])
        p = dict(PROMPT_DEFAULTS, **config.get("prompt_encoder_config", {}))
        d = dict(DECODER_DEFAULTS, **config.get("mask_decoder_config", {}))
        self.automm = config.get("automm", {})
        self.shared_image_embedding = PositionalEmbedding(v)
        self.vision_encoder = VisionEncoder(v)
        self.prompt_encoder = PromptEncoder(p, self.shared_image_embedding)
        self.mask_decoder = MaskDecoder(d)

    def load_state_dict(self, state_dict, strict=True):  # fills in the tied duplicate (see the key rule)
        state_dict = dict(state_dict)
        shared = state_dict["shared_image_embedding.positional_embedding"]
        if TIED in state_dict and not torch.equal(state_dict[TIED], shared):
            raise ValueError(TIED + " differs from the tied shared_image_embedding.positional_embedding")
        state_dict[TIED] = shared
        return super().load_state_dict(state_dict, strict)

    def resample(self, S):  # the image size rule of the docstring
        g = S // self.vc["patch_size"]
        ve = self.vision_encoder
        if hasattr(ve, "pos_embed"):
            pe = F.interpolate(ve.pos_embed.permute(0, 3, 1, 2), size=(g, g), mode="bicubic", align_corners=False)
            ve.pos_embed = nn.Parameter(pe.permute(0, 2, 3, 1))
        for layer in ve.layers:
            if layer.window_size == 0 and layer.attn.use_rel_pos:
                for name in ("rel_pos_h", "rel_pos_w"):
                    r = getattr(layer.attn, name)  # [L, hd] -> [2g-1, hd]
                    r = F.interpolate(r.t().unsqueeze(0), size=2 * g - 1, mode="linear", align_corners=False)
                    setattr(layer.attn, name, nn.Parameter(r[0].t()))
        self.prompt_encoder.image_embedding_size = g

    def image_wide_pe(self):  # get_image_wide_positional_embeddings -> [1, C, g, g]
        size = self.prompt_encoder.image_embedding_size
        grid = torch.ones(size, size)
        y = (grid.cumsum(dim=0) - 0.5) / size
        x = (grid.cumsum(dim=1) - 0.5) / size
        return self.shared_image_embedding(torch.stack([x, y], dim=-1)).permute(2, 0, 1).unsqueeze(0)

    def forward(self, pixel_values, record):  # SamModel.forward, no prompts, multimask_output=False
        image_pe = self.image_wide_pe()
        image_embeddings = self.vision_encoder(pixel_values, record)
        sparse, dense = self.prompt_encoder()
        record.update(image_embeddings=image_embeddings, image_pe=image_pe, dense_embeddings=dense)
        return self.mask_decoder(image_embeddings, image_pe.repeat(pixel_values.shape[0], 1, 1, 1), sparse, dense,
                                 multimask_output=False)

    def automm_modify(self, T, K, classifier_weight=None, classifier_bias=None):  # SAMForSemanticSegmentation.__init__
        md = self.mask_decoder
        token0 = md.mask_tokens.weight.data[0].clone()
        md.num_mask_tokens = T
        md.mask_tokens = nn.Embedding(T, md.hidden_size)
        md.mask_tokens.weight.data[:] = token0  # every row copies the original token 0
        md.output_hypernetworks_mlps = nn.ModuleList([md.output_hypernetworks_mlps[0]])
        if K > 1:
            md.multi_class, md.num_classes = True, K
            md.output_classifier_mlps = nn.Linear(md.hidden_size, K + 1)
            md.output_classifier_mlps.weight.data.copy_(classifier_weight)
            md.output_classifier_mlps.bias.data.copy_(classifier_bias)
        elif T != 1:
            raise ValueError("binary AutoMM SAM (num_classes 1) needs num_mask_tokens 1")


def outputs_of(model, inputs):
    a = model.automm  # AutoMM's defaults: one token, binary, the checkpoint's image size
    T, K, S = a.get("num_mask_tokens", 1), a.get("num_classes", 1), a.get("image_size", model.vc["image_size"])
    pixel_values = inputs["pixel_values"]
    if S != model.vc["image_size"]:
        model.resample(S)
    g = S // model.vc["patch_size"]
    assert model.prompt_encoder.image_embedding_size == g, "prompt_encoder_config image_size / patch_size mismatch"
    out = {}
    hf_masks, hf_iou = model(pixel_values, out)  # unmodified HF: [B, 1, 1, 4g, 4g], [B, 1, 1]
    out.update(hf_pred_masks=hf_masks, hf_iou_scores=hf_iou)
    model.automm_modify(T, K, inputs.get("classifier_weight"), inputs.get("classifier_bias"))
    if "mask_tokens" in inputs:  # after the copy of token 0: distinct tokens, as fine-tuning leaves them
        model.mask_decoder.mask_tokens.weight.data.copy_(inputs["mask_tokens"])
    result = model(pixel_values, {})
    low_res = result[0][:, 0]  # pred_masks[:, 0] -> [B, T, 4g, 4g]
    out["automm_low_res_masks"] = low_res
    out["automm_logits"] = F.interpolate(low_res, (S, S), mode="bilinear", align_corners=False)
    if K > 1:
        out["automm_class_logits"] = result[2][:, 0]  # [B, T, K+1]
    return out


if __name__ == "__main__":
    run_reference_cases(SamModel, outputs_of)
