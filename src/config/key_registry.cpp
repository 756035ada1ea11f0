// The table of every hyperparameter key. Facts from AutoMM's configs (AutoMM's configs/*/default.yaml).
#include <algorithm>
#include <sstream>
#include <stdexcept>

#include "automm/config.h"

namespace automm {
namespace {


// Small builders so that each key reads as one line of the table.
KeySpec key(std::string name, KeyType type, Json def, std::string doc) {
  KeySpec spec;
  spec.name = std::move(name);
  spec.type = type;
  spec.default_value = std::move(def);
  spec.doc = std::move(doc);
  return spec;
}
KeySpec& alias(KeySpec& spec, std::vector<std::string> names) {
  spec.aliases = std::move(names);
  return spec;
}

struct Builder {
  std::vector<KeySpec> keys;
  KeySpec& add(std::string name, KeyType type, Json def, std::string doc) {
    keys.push_back(key(std::move(name), type, std::move(def), std::move(doc)));
    return keys.back();
  }
  KeySpec& choice(std::string name, Json def, std::vector<std::string> choices, std::string doc) {
    KeySpec& spec = add(std::move(name), KeyType::kString, std::move(def), std::move(doc));
    spec.choices = std::move(choices);
    return spec;
  }
};

KeySpec& range(KeySpec& spec, std::optional<double> min, std::optional<double> max,
               bool min_exclusive = false, bool max_exclusive = false) {
  spec.min = min;
  spec.max = max;
  spec.min_exclusive = min_exclusive;
  spec.max_exclusive = max_exclusive;
  return spec;
}
KeySpec& pending(KeySpec& spec, const char* feature) {
  spec.pending = feature;
  return spec;
}
KeySpec& nullable(KeySpec& spec) {
  spec.nullable = true;
  return spec;
}

using K = KeyType;

void add_optim_keys(Builder& b) {
  alias(range(b.add("optim.lr", K::kFloat, 1e-4, "Base learning rate."), 0.0, {}, true),
        {"optim.learning_rate"});
  b.choice("optim.optim_type", "adamw", {"sgd", "adam", "adamw"},
           "Optimizer: sgd (momentum 0.9), adam, adamw (eps 1e-6).");
  range(b.add("optim.weight_decay", K::kFloat, 1e-3,
              "Weight decay; never applied to biases, norm weights, cls tokens or feature "
              "tokenizers."),
        0.0, {});
  b.choice("optim.lr_choice", "layerwise_decay", {"layerwise_decay", "two_stages", "single_stage", ""},
           "Per-parameter learning rates: layerwise_decay, two_stages (head gets lr * lr_mult), "
           "or single_stage (also \"\") for one lr.");
  range(b.add("optim.lr_decay", K::kFloat, 0.9,
              "Layerwise decay factor: lr * lr_decay^block_id; 1 disables."),
        0.0, 1.0, true);
  range(b.add("optim.lr_mult", K::kFloat, 1.0, "Head learning-rate multiplier under two_stages."),
        0.0, {}, true);
  b.choice("optim.lr_schedule", "cosine_decay",
           {"cosine_decay", "polynomial_decay", "linear_decay", "multi_step"},
           "Learning-rate schedule, stepped per optimizer step.");
  range(b.add("optim.end_lr", K::kFloat, 0.0, "Final learning rate of polynomial_decay."), 0.0, {});
  range(b.add("optim.max_epochs", K::kInt, 20, "Maximum number of epochs."), 1.0, {});
  b.add("optim.max_steps", K::kInt, -1,
        "Maximum optimizer steps; -1 = off. When set it also defines the schedule's length "
        "(AutoMM ignores it there).");
  b.add("optim.min_steps", K::kInt, -1,
        "Early stopping (patience, or the metric's optimum) does not end a fit before this many "
        "optimizer steps; -1 = off (Lightning's min_steps). The training budget sets it for small tables.");
  range(b.add("optim.warmup_steps", K::kIntOrFloat, 0.1,
              "Warmup: a float in [0,1) is a fraction of the total steps, an int a step count."),
        0.0, {});
  range(b.add("optim.patience", K::kInt, 10, "Early-stopping patience, in validation checks."),
        0.0, {});
  range(b.add("optim.val_check_interval", K::kIntOrFloat, 0.5,
              "Validate every fraction (0,1] of an epoch, or every N batches if an int."),
        0.0, {}, true);
  range(b.add("optim.check_val_every_n_epoch", K::kInt, 1, "Validate every N epochs."), 1.0, {});
  b.choice("optim.gradient_clip_algorithm", "norm", {"norm", "value"},
           "Gradient clipping by global norm or by value.");
  range(b.add("optim.gradient_clip_val", K::kFloat, 1.0, "Clip threshold; 0 disables."), 0.0, {});
  b.add("optim.track_grad_norm", K::kIntOrInf, -1,
        "Log the p-norm of the gradients (-1 off, p >= 1, or inf) in the metrics log.");
  range(b.add("optim.log_every_n_steps", K::kInt, 10,
              "Write a row of the metrics log every N optimizer steps."),
        1.0, {});
  range(b.add("optim.top_k", K::kInt, 3, "Checkpoints kept by validation score."), 1.0, {});
  b.choice("optim.top_k_average_method", "greedy_soup", {"greedy_soup", "uniform_soup", "best"},
           "How the top-k checkpoints become the final model.");
  alias(nullable(b.choice("optim.peft", nullptr,
                          {"bit_fit", "norm_fit", "lora", "lora_bias", "lora_norm", "ia3", "ia3_bias", "ia3_norm",
                           "ia3_lora", "ia3_lora_bias", "ia3_lora_norm"},
                          "Parameter-efficient fine-tuning: what trains in the pretrained backbones (heads, fusion "
                          "and tabular models always train); null = everything.")),
        {"optim.efficient_finetune"});
  b.add("optim.extra_trainable_params", K::kStringList, Json::array(),
        "Regexes matched at the start of a parameter's full name: those parameters train under optim.peft too.");
  range(b.add("optim.lora.r", K::kInt, 8, "LoRA rank."), 1.0, {});
  range(b.add("optim.lora.alpha", K::kFloat, 8, "LoRA scaling alpha (the update is scaled by alpha / r)."), 0.0, {},
        true);
  b.add("optim.lora.filter", K::kStringList, Json::array({"query", "value", "^q$", "^v$", "^k$", "^o$"}),
        "Regexes matched at the start of a Linear layer's own name: those layers get LoRA / IA3 adapters.");
  nullable(b.add("optim.lora.module_filter", K::kStringList, nullptr,
                 "Regexes matched at the start of the parent module's full name; null = all modules."));
  b.add("optim.lora.merge_at_save", K::kBool, true,
        "Fold LoRA / IA3 adapters into the weights when the fit ends (inference runs with no adapter code); "
        "false keeps them separate in the saved predictor.");
  range(b.add("optim.label_smoothing", K::kFloat, 0.0, "Label smoothing of the classification loss."),
        0.0, 1.0, false, true);
  // AutoMM's default.yaml says 10 / 5 / 5, but Hugging Face's Mask2FormerLoss never applies its
  // weight_dict, so AutoMM trains with 1 / 1 / 1: those are the defaults here, and the keys apply.
  range(b.add("optim.mask2former_loss.loss_cross_entropy_weight", K::kFloat, 1.0,
              "mask2former_loss: weight of the class cross-entropy (AutoMM's 10 is never applied there)."),
        0.0, {});
  range(b.add("optim.mask2former_loss.loss_mask_weight", K::kFloat, 1.0,
              "mask2former_loss: weight of the mask sigmoid cross-entropy (AutoMM's 5 is never applied there)."),
        0.0, {});
  range(b.add("optim.mask2former_loss.loss_dice_weight", K::kFloat, 1.0,
              "mask2former_loss: weight of the dice loss (AutoMM's 5 is never applied there)."),
        0.0, {});
  b.choice("optim.loss_func", "auto", {"auto", "bce", "focal_loss", "structure_loss", "mask2former_loss"},
           "auto: cross-entropy / MSE; bce: regression labels in [0,1]; focal_loss: classification.");
  nullable(b.add("optim.focal_loss.alpha", K::kNumberList, nullptr,
                 "Per-class focal-loss weights (list of numbers, one per class); null = none."));
  range(b.add("optim.focal_loss.gamma", K::kFloat, 2.0, "Focal-loss focusing parameter."), 0.0, {});
  b.add("optim.skip_final_val", K::kBool, false,
        "Skip validating the final (averaged) model after fit.");
}

void add_env_keys(Builder& b) {
  b.add("env.num_gpus", K::kInt, -1,
        "Devices to use; -1 = all visible. CPU counts as one. Under env.strategy = ddp: worker processes per "
        "node, checked against LOCAL_WORLD_SIZE.");
  range(b.add("env.per_gpu_batch_size", K::kInt, 8, "Batch size per device per step."), 1.0, {});
  range(b.add("env.batch_size", K::kInt, 128,
              "Effective batch size; gradients accumulate over "
              "max(batch_size // (per_gpu_batch_size * devices), 1) steps."),
        1.0, {});
  alias(range(b.add("env.inference_batch_size_ratio", K::kInt, 4,
                    "Inference batch = per_gpu_batch_size * ratio."),
              1.0, {}),
        {"env.eval_batch_size_ratio"});
  b.choice("env.precision", "16-mixed",
           {"64", "32", "bf16-mixed", "bf16-true", "16-mixed", "16-true"},
           "Numeric precision. On CPU the 16-bit modes run as bf16: 16-mixed as bf16-mixed "
           "(autocast), 16-true as bf16-true.");
  range(b.add("env.num_workers", K::kInt, 2,
              "Threads preparing training batches ahead of the model; 0 = inline."),
        0.0, {});
  alias(range(b.add("env.num_workers_inference", K::kInt, 2,
                    "Threads preparing inference batches ahead of the model; 0 = inline."),
              0.0, {}),
        {"env.num_workers_evaluation"});
  b.choice("env.strategy", "ddp_spawn",
           {"dp", "ddp", "ddp_spawn", "ddp_find_unused_parameters_true", "ddp_spawn_find_unused_parameters_true",
            "auto"},
           "ddp: this process is one worker of a data-parallel fit, placed by the torchrun variables (RANK, "
           "WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT); parameters without a gradient "
           "count as zero, so the find_unused variant is the same. dp, auto, ddp_spawn: one process (automm.cpp "
           "starts no workers itself).");
  b.choice("env.accelerator", "auto", {"cpu", "gpu", "auto"},
           "Where to train: cpu, gpu (needs a CUDA build of LibTorch), auto.");
  range(b.add("env.num_nodes", K::kInt, 1,
              "Machines in a data-parallel fit; under ddp, checked against WORLD_SIZE / LOCAL_WORLD_SIZE."),
        1.0, {});
  range(b.add("env.ddp_timeout", K::kFloat, 60.0,
              "Seconds a data-parallel collective (or the rendezvous) waits for the other ranks before the fit "
              "fails naming the rank and what it was doing."),
        0.0, {}, true);
  b.add("env.deterministic", K::kBool, false,
        "Deterministic algorithms: with the same seed two fits give identical weights.");
  b.add("env.compile.turn_on", K::kBool, false,
        "Predict through TorchScript graphs of the network (traced per input shape, frozen); see docs/deployment.md.");
  b.choice("env.compile.mode", "default", {"default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"},
           "default: trace + freeze; the others also run optimize_for_inference (oneDNN rewrites).");
  b.add("env.compile.dynamic", K::kBool, true,
        "Pad batches to shape buckets (rows to powers of two, text to multiples of 32) so few graphs serve all.");
  b.add("env.compile.backend", K::kString, "torchscript",
        "torchscript; torch.compile's backends (AutoMM's default inductor) need PyTorch 2 and are refused.");
}

void add_model_keys(Builder& b) {
  b.add("model.names", K::kStringList,
        Json::array({"categorical_mlp", "numerical_mlp", "hf_text", "timm_image", "fusion_mlp"}),
        "Backbones and one fusion model; those whose modality is absent are dropped.");
  // hf_text
  b.add("model.hf_text.checkpoint_name", K::kString, "google/electra-base-discriminator",
        "Hugging Face id (cache, else download), local folder, local:// path, or scratch:bert-tiny / "
        "bert-mini / bert-small / bert-medium / bert-base (random weights, vocabulary from the training text).");
  b.choice("model.hf_text.pooling_mode", "cls", {"cls", "mean"}, "Text pooling: first token or masked mean.");
  b.choice("model.hf_text.tokenizer_name", "hf_auto", {"hf_auto", "bert", "electra", "clip"},
           "Tokenizer: hf_auto picks by the checkpoint's files; bert / electra need a WordPiece vocabulary; clip "
           "CLIP's BPE (tokenizer.json or vocab.json + merges.txt).");
  b.add("model.hf_text.max_text_len", K::kInt, 512, "Maximum tokens; <= 0 = the model's maximum.");
  b.add("model.hf_text.insert_sep", K::kBool, true, "[SEP] between text columns.");
  range(b.add("model.hf_text.text_segment_num", K::kInt, 2, "Segment ids used (capped at the model's)."), 1.0, {});
  b.add("model.hf_text.stochastic_chunk", K::kBool, false, "Random window of over-long texts (training only).");
  b.add("model.hf_text.text_aug_detect_length", K::kInt, 10, "Words a text needs before it is augmented.");
  range(b.add("model.hf_text.text_trivial_aug_maxscale", K::kFloat, 0.1,
              "Maximum strength of training-time text augmentation; 0 = off."),
        0.0, 1.0);
  b.add("model.hf_text.gradient_checkpointing", K::kBool, false,
        "Recompute encoder blocks in backward to save memory.");
  // timm_image
  b.add("model.timm_image.checkpoint_name", K::kString, "swin_base_patch4_window7_224",
        "timm model name (pretrained weights from the Hugging Face cache as timm/<name>.<tag>, else "
        "downloaded), a folder in timm's hub format, or a weights file named after its model.");
  b.add("model.timm_image.train_transforms", K::kStringList,
        Json::array({"resize_shorter_side", "center_crop", "trivial_augment"}),
        "Training image transforms, by name or name(args), e.g. random_resize_crop(224, scale=0.5-1.0).");
  b.add("model.timm_image.val_transforms", K::kStringList, Json::array({"resize_shorter_side", "center_crop"}),
        "Inference image transforms.");
  nullable(b.add("model.timm_image.image_size", K::kInt, nullptr, "Input size; null = the checkpoint's."));
  b.choice("model.timm_image.image_norm", "imagenet", {"imagenet", "clip"}, "Normalisation statistics.");
  range(b.add("model.timm_image.max_image_num_per_column", K::kInt, 1, "Images used per cell (';'-separated)."),
        1.0, {});
  // clip
  b.add("model.clip.checkpoint_name", K::kString, "openai/clip-vit-base-patch32",
        "Hugging Face CLIPModel id (cache, else download), local folder, local:// path, or scratch:clip-tiny "
        "(random weights, tokenizer learned from the training text).");
  nullable(b.add("model.clip.image_size", K::kInt, nullptr,
                 "Input size; null = the checkpoint's (224 for openai/clip-vit-base-patch32). Another multiple of the "
                 "patch size resamples the checkpoint's position embeddings (bicubic, as transformers' "
                 "interpolate_pos_encoding)."));
  b.add("model.clip.max_text_len", K::kInt, 77, "Maximum tokens with <|startoftext|> and <|endoftext|>; <= 0 = 77.");
  b.add("model.clip.train_transforms", K::kStringList,
        Json::array({"resize_shorter_side", "center_crop", "trivial_augment"}), "Training image transforms.");
  b.add("model.clip.val_transforms", K::kStringList, Json::array({"resize_shorter_side", "center_crop"}),
        "Inference image transforms.");
  b.choice("model.clip.image_norm", "clip", {"imagenet", "clip"}, "Normalisation statistics.");
  range(b.add("model.clip.max_image_num_per_column", K::kInt, 1, "Images used per cell (';'-separated)."), 1.0, {});
  b.add("model.clip.prompt_template", K::kString, "{}",
        "Zero-shot: the text CLIP reads for a class name, {} standing for the name (AutoMM: the name verbatim); "
        "e.g. \"a photo of a {}\".");
  // tabular backbones
  for (const char* name : {"categorical_mlp", "numerical_mlp"}) {
    const std::string prefix = std::string("model.") + name + ".";
    const int hidden = std::string(name) == "categorical_mlp" ? 64 : 128;
    range(b.add(prefix + "hidden_size", K::kInt, hidden, "Hidden width."), 1.0, {});
    b.choice(prefix + "activation", "leaky_relu", {"leaky_relu", "relu", "gelu", "tanh"},
             "Activation.");
    range(b.add(prefix + "num_layers", K::kInt, 1, "MLP layers."), 1.0, {});
    range(b.add(prefix + "drop_rate", K::kFloat, 0.1, "Dropout."), 0.0, 1.0, false, true);
    b.choice(prefix + "normalization", "layer_norm", {"layer_norm", "batch_norm", "none"},
             "Normalisation in each layer.");
  }
  pending(nullable(b.add("model.ft_transformer.checkpoint_name", K::kString, nullptr,
                         "Pretrained FT-Transformer blocks (local file).")),
          "loading pretrained FT-Transformer blocks");
  range(b.add("model.ft_transformer.num_blocks", K::kInt, 3, "Transformer blocks."), 1.0, {});
  range(b.add("model.ft_transformer.token_dim", K::kInt, 192, "Feature-token width."), 1.0, {});
  range(b.add("model.ft_transformer.hidden_size", K::kInt, 192,
              "Transformer width (tokens are projected when it differs from token_dim)."),
        8.0, {});
  range(b.add("model.ft_transformer.ffn_hidden_size", K::kInt, 192, "GEGLU feed-forward width."),
        1.0, {});
  range(b.add("model.ft_transformer.attention_num_heads", K::kInt, 8,
              "Attention heads (must divide hidden_size)."),
        1.0, {});
  range(b.add("model.ft_transformer.attention_dropout", K::kFloat, 0.2, "Attention dropout."), 0.0,
        1.0, false, true);
  range(b.add("model.ft_transformer.ffn_dropout", K::kFloat, 0.1, "Feed-forward dropout."), 0.0,
        1.0, false, true);
  range(b.add("model.ft_transformer.residual_dropout", K::kFloat, 0.0, "Residual dropout."), 0.0,
        1.0, false, true);
  // fusion
  b.add("model.fusion_mlp.hidden_sizes", K::kNumberList, Json::array({128}),
        "Widths of the fusion MLP's layers.");
  b.choice("model.fusion_mlp.activation", "leaky_relu", {"leaky_relu", "relu", "gelu", "tanh"},
           "Activation.");
  range(b.add("model.fusion_mlp.drop_rate", K::kFloat, 0.1, "Dropout."), 0.0, 1.0, false, true);
  b.choice("model.fusion_mlp.normalization", "layer_norm", {"layer_norm", "batch_norm", "none"},
           "Normalisation.");
  b.choice("model.fusion_mlp.adapt_in_features", "max", {"max", "min"},
           "Project each backbone's features to the largest (or smallest) width.");
  nullable(range(b.add("model.fusion_mlp.aux_loss_weight", K::kFloat, nullptr,
                       "Weight of each backbone's own loss added to the fused loss; null = off."),
                 0.0, {}));
  range(b.add("model.fusion_transformer.hidden_size", K::kInt, 192, "Token width."), 8.0, {});
  range(b.add("model.fusion_transformer.num_blocks", K::kInt, 3, "Transformer blocks."), 1.0, {});
  range(b.add("model.fusion_transformer.attention_num_heads", K::kInt, 8, "Attention heads."), 1.0,
        {});
  range(b.add("model.fusion_transformer.ffn_hidden_size", K::kInt, 192, "GEGLU width."), 1.0, {});
  range(b.add("model.fusion_transformer.attention_dropout", K::kFloat, 0.1, "Attention dropout."),
        0.0, 1.0, false, true);
  range(b.add("model.fusion_transformer.ffn_dropout", K::kFloat, 0.1, "Feed-forward dropout."), 0.0,
        1.0, false, true);
  range(b.add("model.fusion_transformer.residual_dropout", K::kFloat, 0.0, "Residual dropout."),
        0.0, 1.0, false, true);
  b.choice("model.fusion_transformer.adapt_in_features", "max", {"max", "min"},
           "Project each backbone's features to the largest (or smallest) width first.");
  nullable(range(b.add("model.fusion_transformer.aux_loss_weight", K::kFloat, nullptr,
                       "Weight of each backbone's own loss; null = off."),
                 0.0, {}));
  // detection and segmentation
  b.add("model.mmdet_image.checkpoint_name", K::kString, "yolov3_mobilenetv2_8xb24-320-300e_coco",
        "Detector: yolov3_mobilenetv2_8xb24-320-300e_coco, yolox_nano, yolox_tiny, yolox_s, yolox_m, yolox_l, "
        "yolox_x, or an mmdet checkpoint file (.pth) or folder with model.pth (the architecture is read from it).");
  b.choice("model.mmdet_image.output_bbox_format", "xyxy", {"xyxy", "xywh"},
           "Box format of predictions: [x1, y1, x2, y2] or [x1, y1, width, height] (width = x2 - x1).");
  b.add("model.mmdet_image.frozen_layers", K::kStringList, Json::array(),
        "Name substrings (e.g. backbone, neck) of layers kept frozen, their batch norms in eval mode.");
  nullable(b.add("model.mmdet_image.coco_root", K::kString, nullptr,
                 "Folder that COCO files' file_name entries are relative to; null = <json folder>/.. "
                 "(then the json's folder, then <json folder>/../images)."));
  nullable(range(b.add("model.mmdet_image.image_size", K::kInt, nullptr,
                       "Input size (a multiple of 32): the long side is resized to it; null = the architecture's "
                       "(YOLOv3 320, yolox_nano / tiny 416, others 640)."),
                 32.0, {}));
  nullable(range(b.add("model.mmdet_image.score_thr", K::kFloat, nullptr,
                       "Detections scoring below it are dropped; null = mmdet's (YOLOX 0.01, YOLOv3 0.05)."),
                 0.0, 1.0));
  nullable(range(b.add("model.mmdet_image.nms_iou_thr", K::kFloat, nullptr,
                       "Class-aware NMS suppresses boxes overlapping a better one by more than this IoU; null = "
                       "mmdet's (YOLOX 0.65, YOLOv3 0.45)."),
                 0.0, 1.0));
  nullable(range(b.add("model.mmdet_image.max_per_img", K::kInt, nullptr,
                       "Detections kept per image; null = mmdet's (YOLOX all, YOLOv3 100), 0 = all."),
                 0.0, {}));
  b.add("model.mmdet_image.multi_image_mix", K::kBool, true,
        "YOLOX: Mosaic and MixUp in training, as AutoMM's configs (Mosaic with probability 0.5).");
  range(b.add("model.mmdet_image.num_last_epochs", K::kInt, 15,
              "YOLOX: the last N epochs train without Mosaic and MixUp and add the L1 loss on the raw box outputs, "
              "as the YOLOX paper (AutoMM never switches: 0; N >= max_epochs: no switch, as mmdet's hook)."),
        0.0, {});
  b.add("model.sam.checkpoint_name", K::kString, "facebook/sam-vit-huge",
        "SAM checkpoint: a Hugging Face SamModel id or folder (facebook/sam-vit-base, -large, -huge), or "
        "scratch:sam-tiny (random weights, a small encoder).");
  nullable(range(b.add("model.sam.image_size", K::kInt, nullptr,
                       "Side of the square SAM reads (a multiple of its patch size); null = the checkpoint's (1024). "
                       "Other sizes resample the position embeddings."),
                 16.0, {}));
  b.choice("model.sam.image_norm", "imagenet", {"imagenet", "clip", "inception"}, "Pixel normalisation.");
  b.add("model.sam.train_transforms", K::kStringList, Json::array({"random_horizontal_flip"}),
        "Training transforms, applied to the image and its mask together (flips, crops, colour jitter).");
  b.add("model.sam.val_transforms", K::kStringList, Json::array(),
        "Transforms before img_transforms at validation and prediction.");
  b.add("model.sam.img_transforms", K::kStringList, Json::array({"resize_to_square"}),
        "Image transforms to the model's square (the mask follows with NEAREST).");
  b.add("model.sam.gt_transforms", K::kStringList, Json::array({"resize_gt_to_square"}),
        "Mask transforms: resize_gt_to_square (NEAREST), the only one AutoMM has.");
  b.add("model.sam.frozen_layers", K::kStringList, Json::array({"mask_decoder.iou_prediction_head", "prompt_encoder"}),
        "Parameters whose names contain one of these stay frozen.");
  range(b.add("model.sam.num_mask_tokens", K::kInt, 1,
              "Mask queries of the decoder: 1 for binary masks; with multi-class masks and this key unset, "
              "max(10, classes)."),
        1.0, {});
  range(b.add("model.sam.ignore_label", K::kInt, 255, "Mask value that counts in no class (multi-class masks)."),
        0.0, 255.0);
}

void add_data_keys(Builder& b) {
  b.choice("data.image.missing_value_strategy", "zero", {"zero", "skip"},
           "Missing or unreadable images: zero (black, excluded from the average) or skip the row.");
  b.add("data.text.normalize_text", K::kBool, false, "Normalise text encodings.");
  b.add("data.categorical.convert_to_text", K::kBool, false, "Feed categorical columns to the text model.");
  b.add("data.numerical.convert_to_text", K::kBool, false, "Feed numerical columns to the text model.");
  range(b.add("data.categorical.minimum_cat_count", K::kInt, 100,
              "Categories seen fewer times share the rare index (capped by maximum_num_cat)."),
        0.0, {});
  range(b.add("data.categorical.maximum_num_cat", K::kInt, 20,
              "Most frequent categories kept per column."),
        1.0, {});
  b.add("data.numerical.scaler_with_mean", K::kBool, true, "Centre numerical columns.");
  b.add("data.numerical.scaler_with_std", K::kBool, true, "Scale numerical columns to unit variance.");
  alias(b.choice("data.label.numerical_preprocessing", "standardscaler",
                 {"standardscaler", "minmaxscaler", "none"}, "Regression label scaling."),
        {"data.label.numerical_label_preprocessing"});
  nullable(b.add("data.pos_label", K::kString, nullptr,
                 "Binary positive class; moved to the last index. null = sorted order."));
  b.choice("data.column_features_pooling_mode", "concat", {"concat", "mean"},
           "How per-column features of a tabular backbone are pooled.");
  b.add("data.mixup.turn_on", K::kBool, false,
        "Mixup / CutMix of the image columns with soft class targets (classification with an image model); "
        "AutoMM's own switch never turns it on.");
  range(b.add("data.mixup.mixup_alpha", K::kFloat, 0.8, "Mixup's Beta(alpha, alpha); 0 = no Mixup."), 0.0, {});
  range(b.add("data.mixup.cutmix_alpha", K::kFloat, 1.0, "CutMix's Beta(alpha, alpha); 0 = no CutMix."), 0.0, {});
  nullable(b.add("data.mixup.cutmix_minmax", K::kNumberList, nullptr,
                 "[min, max] CutMix box side as a fraction of the image side (drawn uniformly; forces CutMix on, "
                 "alpha 1); null = sides from lambda."));
  range(b.add("data.mixup.prob", K::kFloat, 1.0, "Probability of mixing a batch (or a row)."), 0.0, 1.0);
  range(b.add("data.mixup.switch_prob", K::kFloat, 0.5, "Probability of CutMix over Mixup when both are on."), 0.0,
        1.0);
  b.choice("data.mixup.mode", "batch", {"batch", "pair", "elem"},
           "One lambda per batch, per pair of rows (i, n-1-i), or per row.");
  range(b.add("data.mixup.label_smoothing", K::kFloat, 0.1, "Label smoothing of the mixed targets."), 0.0, 1.0,
        false, true);
  range(b.add("data.mixup.turn_off_epoch", K::kInt, 5, "Mixing stops from this (0-based) epoch on."), 0.0, {});
}

// Knowledge distillation, with a teacher predictor (FitOptions::teacher_predictor,
// automm fit --teacher DIR).
void add_distiller_keys(Builder& b) {
  b.choice("distiller.soft_label_loss_type", "", {"", "cross_entropy", "mse"},
           "Loss between student and teacher logits, both divided by the temperature; \"\" = cross_entropy "
           "(against the teacher's softmax) for classification, mse for regression.");
  range(b.add("distiller.temperature", K::kFloat, 5.0, "Divides student and teacher logits in the soft-label loss."),
        0.0, {}, true);
  range(b.add("distiller.hard_label_weight", K::kFloat, 0.1, "Weight of the task loss on the true labels."), 0.0, {});
  range(b.add("distiller.soft_label_weight", K::kFloat, 1.0, "Weight of the soft-label loss."), 0.0, {});
  range(b.add("distiller.softmax_regression_weight", K::kFloat, 0.0,
              "Weight of softmax regression: the teacher's head on the adapted student features, matched to the "
              "teacher's logits."),
        0.0, {});
  b.choice("distiller.softmax_regression_loss_type", "mse", {"", "mse", "cross_entropy"},
           "Softmax-regression loss; \"\" = cross_entropy (classification) / mse (regression).");
  b.choice("distiller.output_feature_loss_type", "mse", {"mse", "cosine"},
           "Loss between the student's features (through a Linear adaptor when widths differ) and the teacher's; "
           "cosine = mean(1 - cosine similarity).");
  range(b.add("distiller.output_feature_loss_weight", K::kFloat, 0.01, "Weight of the feature loss."), 0.0, {});
  range(b.add("distiller.rkd_distance_loss_weight", K::kFloat, 0.0,
              "Relational KD: weight of the smooth-L1 loss between normalized pairwise distances."),
        0.0, {});
  range(b.add("distiller.rkd_angle_loss_weight", K::kFloat, 0.0,
              "Relational KD: weight of the smooth-L1 loss between triplet angles."),
        0.0, {});
}

std::vector<KeySpec> build_registry() {
  Builder b;
  add_optim_keys(b);
  add_env_keys(b);
  add_model_keys(b);
  add_data_keys(b);
  add_distiller_keys(b);
  // The tutorial's spelling optimization.* is an alias of every optim.* key.
  for (KeySpec& spec : b.keys) {
    if (spec.name.rfind("optim.", 0) != 0) continue;
    std::vector<std::string> extra = {"optimization." + spec.name.substr(6)};
    for (const std::string& a : spec.aliases) extra.push_back("optimization." + a.substr(6));
    spec.aliases.insert(spec.aliases.end(), extra.begin(), extra.end());
  }
  return b.keys;
}

}  // namespace

const std::vector<KeySpec>& key_registry() {
  static const std::vector<KeySpec> registry = build_registry();
  return registry;
}

}  // namespace automm
