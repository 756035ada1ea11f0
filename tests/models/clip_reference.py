"""Independent reference for tests/models/test_clip_model.cpp.

A transcription, in plain torch, of the inference path of Hugging Face
transformers' CLIPModel: src/transformers/models/clip/modeling_clip.py at
huggingface/transformers commit 000f1ffdbf1ce6190cc8863af9a2fff817590937
(CLIPTextEmbeddings, CLIPVisionEmbeddings, CLIPAttention with
eager_attention_forward, CLIPMLP, CLIPEncoderLayer, CLIPEncoder,
CLIPTextTransformer, CLIPVisionTransformer, CLIPModel.get_text_features /
get_image_features) and ACT2FN's quick_gelu. The module attributes keep
transformers' names, so load_state_dict(strict=True) checks that the C++
model's parameter names are Hugging Face's. Left out: position_ids inputs,
interpolate_pos_encoding, output_attentions / hidden_states. The causal and
padding masks are one additive mask, as create_causal_mask makes for the eager
attention. The end-of-text pooling follows the configs' eos_token_id as
transformers did before that commit (eos_token_id == 2: argmax of input_ids,
else the first eos_token_id); the commit's own test (every row's largest id is
49407) picks the same position on the inputs used here.

For each CASE named on the command line it reads

  DIR/CASE/config.json           Hugging Face CLIP config.json
  DIR/CASE/weights.safetensors   parameters under Hugging Face names
  DIR/CASE/inputs.safetensors    input_ids, attention_mask: int64 [batch, seq];
                                 pixel_values: float32 [batch, 3, size, size]

and writes DIR/CASE/outputs.safetensors with text_features, image_features
(projected, float32 [batch, projection_dim]) and text_pooled, image_pooled
(before the projections).

Usage: /usr/bin/python3 clip_reference.py DIR CASE [CASE ...]   (needs torch 1.13, numpy)
"""
import torch
from torch import nn

from reference_common import run_reference_cases

TEXT_DEFAULTS = dict(vocab_size=49408, hidden_size=512, intermediate_size=2048, num_hidden_layers=12,
                     num_attention_heads=8, max_position_embeddings=77, hidden_act="quick_gelu", layer_norm_eps=1e-5,
                     eos_token_id=2)
VISION_DEFAULTS = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                       num_channels=3, image_size=224, patch_size=32, hidden_act="quick_gelu", layer_norm_eps=1e-5)


def activation(name):
    if name == "quick_gelu":
        return lambda x: x * torch.sigmoid(1.702 * x)
    if name == "gelu":
        return nn.functional.gelu
    raise ValueError(name)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_dim = c["hidden_size"]
        self.num_heads = c["num_attention_heads"]
        self.head_dim = self.embed_dim // self.num_heads
        self.scale = self.head_dim ** -0.5
        self.k_proj = nn.Linear(self.embed_dim, self.embed_dim)
        self.v_proj = nn.Linear(self.embed_dim, self.embed_dim)
        self.q_proj = nn.Linear(self.embed_dim, self.embed_dim)
        self.out_proj = nn.Linear(self.embed_dim, self.embed_dim)

    def forward(self, hidden_states, attention_mask):
        b, s, _ = hidden_states.shape
        q = self.q_proj(hidden_states).view(b, s, -1, self.head_dim).transpose(1, 2)
        k = self.k_proj(hidden_states).view(b, s, -1, self.head_dim).transpose(1, 2)
        v = self.v_proj(hidden_states).view(b, s, -1, self.head_dim).transpose(1, 2)
        weights = torch.matmul(q, k.transpose(-1, -2)) * self.scale
        if attention_mask is not None:
            weights = weights + attention_mask
        weights = nn.functional.softmax(weights, dim=-1, dtype=torch.float32).to(q.dtype)
        out = torch.matmul(weights, v).transpose(1, 2).contiguous().reshape(b, s, -1)
        return self.out_proj(out)


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.activation_fn = activation(c["hidden_act"])
        self.fc1 = nn.Linear(c["hidden_size"], c["intermediate_size"])
        self.fc2 = nn.Linear(c["intermediate_size"], c["hidden_size"])

    def forward(self, x):
        return self.fc2(self.activation_fn(self.fc1(x)))


class EncoderLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self_attn = Attention(c)
        self.layer_norm1 = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])
        self.mlp = MLP(c)
        self.layer_norm2 = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])

    def forward(self, hidden_states, attention_mask):
        residual = hidden_states
        hidden_states = residual + self.self_attn(self.layer_norm1(hidden_states), attention_mask)
        residual = hidden_states
        return residual + self.mlp(self.layer_norm2(hidden_states))


class Encoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layers = nn.ModuleList([EncoderLayer(c) for _ in range(c["num_hidden_layers"])])

    def forward(self, hidden_states, attention_mask=None):
        for layer in self.layers:
            hidden_states = layer(hidden_states, attention_mask)
        return hidden_states


class TextEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.token_embedding = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.position_embedding = nn.Embedding(c["max_position_embeddings"], c["hidden_size"])

    def forward(self, input_ids):
        positions = torch.arange(input_ids.shape[-1]).unsqueeze(0)
        return self.token_embedding(input_ids) + self.position_embedding(positions)


class TextTransformer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.eos_token_id = c["eos_token_id"]
        self.embeddings = TextEmbeddings(c)
        self.encoder = Encoder(c)
        self.final_layer_norm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])

    def forward(self, input_ids, attention_mask):
        hidden = self.embeddings(input_ids)
        b, s = input_ids.shape
        lowest = torch.finfo(hidden.dtype).min
        allowed = torch.ones(s, s, dtype=torch.bool).tril().unsqueeze(0) & attention_mask.bool().unsqueeze(1)
        mask = torch.zeros(b, 1, s, s, dtype=hidden.dtype).masked_fill(~allowed.unsqueeze(1), lowest)
        last = self.final_layer_norm(self.encoder(hidden, mask))
        rows = torch.arange(b)
        if self.eos_token_id == 2:
            eos = input_ids.to(torch.int).argmax(dim=-1)
        else:
            eos = (input_ids.to(torch.int) == self.eos_token_id).int().argmax(dim=-1)
        return last[rows, eos]


class VisionEmbeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c["hidden_size"]
        self.class_embedding = nn.Parameter(torch.randn(d))
        self.patch_embedding = nn.Conv2d(c["num_channels"], d, kernel_size=c["patch_size"], stride=c["patch_size"],
                                         bias=False)
        self.num_positions = (c["image_size"] // c["patch_size"]) ** 2 + 1
        self.position_embedding = nn.Embedding(self.num_positions, d)

    def forward(self, pixel_values):
        b = pixel_values.shape[0]
        patches = self.patch_embedding(pixel_values.to(self.patch_embedding.weight.dtype)).flatten(2).transpose(1, 2)
        embeddings = torch.cat([self.class_embedding.expand(b, 1, -1), patches], dim=1)
        return embeddings + self.position_embedding(torch.arange(self.num_positions).unsqueeze(0))


class VisionTransformer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embeddings = VisionEmbeddings(c)
        self.pre_layrnorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])
        self.encoder = Encoder(c)
        self.post_layernorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])

    def forward(self, pixel_values):
        hidden = self.encoder(self.pre_layrnorm(self.embeddings(pixel_values)))
        return self.post_layernorm(hidden[:, 0, :])


class CLIPModel(nn.Module):
    def __init__(self, config):
        super().__init__()
        text = dict(TEXT_DEFAULTS, **config.get("text_config", {}))
        vision = dict(VISION_DEFAULTS, **config.get("vision_config", {}))
        projection = config.get("projection_dim", 512)
        self.text_model = TextTransformer(text)
        self.vision_model = VisionTransformer(vision)
        self.visual_projection = nn.Linear(vision["hidden_size"], projection, bias=False)
        self.text_projection = nn.Linear(text["hidden_size"], projection, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(config.get("logit_scale_init_value", 2.6592)))


def outputs_of(model, inputs):
    text_pooled = model.text_model(inputs["input_ids"], inputs["attention_mask"])
    image_pooled = model.vision_model(inputs["pixel_values"])
    return {"text_pooled": text_pooled, "image_pooled": image_pooled,
            "text_features": model.text_projection(text_pooled),
            "image_features": model.visual_projection(image_pooled)}


if __name__ == "__main__":
    run_reference_cases(CLIPModel, outputs_of)
