"""BLIP (Li et al. 2022) in plain PyTorch, with module and parameter names exactly as Hugging Face
transformers' `modeling_blip.py` / `modeling_blip_text.py`, so HF state dicts load with strict=True.

The numerics follow Salesforce's original code (models/vit.py, med.py): pre-norm ViT, BERT with
optional cross-attention, exact-erf GELU, additive mask of -10000 (fp16-safe, and what med.py uses).

Public API (what the trainer and exporter use):
  config_from_dict(d) -> BlipConfig                       # from a blip-parity style config.json
  BlipVisionModel(cfg.vision)(pixels) -> [B, N, Dv]      # after post_layernorm
  BlipTextModel(cfg.text)(ids, mask, image_embeds=None, causal=False) -> [B, T, Dt]
  BlipTextLMHeadModel(cfg.text)(ids, mask, image_embeds) -> logits [B, T, V]
  BlipRetrieval(cfg): image_embeds, image_feat, text_feat, itm_logits
  BlipCaptioning(cfg): decoder_logits, greedy
  BlipForTraining(cfg): the above sharing one vision encoder, plus `temp`, losses and
                        retrieval_state_dict() / captioning_state_dict() / load_hf_state_dicts()
  load_retrieval(path, cfg) / load_captioning(path, cfg)  # strict, HF names only
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .safetensors_io import load_state_dict

# Additive attention-mask value. med.py uses -10000; it underflows to exactly 0 after softmax in
# float32 and stays representable in float16 (finfo.min would overflow to -inf there).
MASK_VALUE = -10000.0


# ----------------------------------------------------------------------------------------- configs
@dataclass
class BlipVisionConfig:
    image_size: int = 384
    patch_size: int = 16
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    layer_norm_eps: float = 1e-6
    qkv_bias: bool = True
    # Mira's small models only (real BLIP checkpoints have none): channel widths of a convolutional
    # stem that replaces the single patch convolution, e.g. (32, 64) with patch 8: three 3x3
    # stride-2 convolutions 3 -> 32 -> 64 -> hidden_size, GELU between them, the last one named
    # patch_embedding. Same token grid (image_size / patch_size)^2; overlapping receptive fields
    # (15 px at patch 8) let a from-scratch ViT see a small object whole ("Early convolutions help
    # transformers see better", Xiao et al., 2021).
    conv_stem: tuple = ()

    @property
    def num_positions(self) -> int:
        return (self.image_size // self.patch_size) ** 2 + 1


@dataclass
class BlipTextConfig:
    vocab_size: int = 30524
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 512
    layer_norm_eps: float = 1e-12
    add_cross_attention: bool = True
    encoder_hidden_size: int = 768  # width of the image tokens the cross-attention reads
    pad_token_id: int = 0
    # BLIP's med_config.json trains with 0.1; HF's BLIP configs say 0.0. No parameters either way.
    hidden_dropout_prob: float = 0.0
    attention_probs_dropout_prob: float = 0.0


@dataclass
class BlipConfig:
    vision: BlipVisionConfig = field(default_factory=BlipVisionConfig)
    text: BlipTextConfig = field(default_factory=BlipTextConfig)
    projection_dim: int = 256
    bos_token_id: int = 30522  # [DEC]
    enc_token_id: int = 30523  # [ENC]
    sep_token_id: int = 102
    pad_token_id: int = 0
    cls_token_id: int = 101


def _pick(cls, d: dict):
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in d.items() if k in names})


def config_from_dict(d: dict) -> BlipConfig:
    """Build a BlipConfig from blip-parity's config.json layout (unknown keys are ignored).
    Also accepts HF's config.json layout (`vision_config` / `text_config`)."""
    vd = d.get('vision') or d.get('vision_config') or {}
    td = dict(d.get('text') or d.get('text_config') or {})
    vision = _pick(BlipVisionConfig, vd)
    td.setdefault('encoder_hidden_size', vision.hidden_size)
    text = _pick(BlipTextConfig, td)
    top = {k: v for k, v in d.items() if k not in ('vision', 'text', 'vision_config', 'text_config')}
    if 'text_config' in d:  # HF layout: the ITC projection is image_text_hidden_size (256);
        # HF's top-level projection_dim (512) is unused by BLIP, and the token ids sit in text_config
        top['projection_dim'] = top.get('image_text_hidden_size', 256)
        top.update({k: td[k] for k in ('bos_token_id', 'sep_token_id', 'pad_token_id') if k in td})
    names = {f.name for f in fields(BlipConfig)} - {'vision', 'text'}
    return BlipConfig(vision=vision, text=text, **{k: v for k, v in top.items() if k in names})


def load_config(path: str | Path) -> BlipConfig:
    return config_from_dict(json.loads(Path(path).read_text()))


# ------------------------------------------------------------------------------------------ vision
class BlipVisionEmbeddings(nn.Module):
    def __init__(self, c: BlipVisionConfig):
        super().__init__()
        self.class_embedding = nn.Parameter(torch.zeros(1, 1, c.hidden_size))
        stem = list(c.conv_stem or ())
        if stem:
            if 2 ** (len(stem) + 1) != c.patch_size:
                raise ValueError(f'conv_stem {stem}: {len(stem) + 1} stride-2 convolutions make patch {2 ** (len(stem) + 1)}, not {c.patch_size}')
            layers, cin = [], 3
            for ch in stem:
                layers += [nn.Conv2d(cin, ch, kernel_size=3, stride=2, padding=1), nn.GELU()]
                cin = ch
            self.stem = nn.Sequential(*layers)
            self.patch_embedding = nn.Conv2d(cin, c.hidden_size, kernel_size=3, stride=2, padding=1)
        else:
            self.stem = None
            self.patch_embedding = nn.Conv2d(3, c.hidden_size, kernel_size=c.patch_size, stride=c.patch_size)
        self.position_embedding = nn.Parameter(torch.zeros(1, c.num_positions, c.hidden_size))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        x = pixel_values if self.stem is None else self.stem(pixel_values)
        x = self.patch_embedding(x).flatten(2).transpose(1, 2)  # [B, N-1, D]
        cls = self.class_embedding.expand(x.shape[0], -1, -1)
        return torch.cat([cls, x], dim=1) + self.position_embedding


class BlipAttention(nn.Module):
    """ViT self-attention with a fused qkv projection (timm layout: [3, heads, head_dim] on the output axis)."""

    def __init__(self, c: BlipVisionConfig):
        super().__init__()
        self.num_heads = c.num_attention_heads
        self.head_dim = c.hidden_size // c.num_attention_heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(c.hidden_size, 3 * c.hidden_size, bias=c.qkv_bias)
        self.projection = nn.Linear(c.hidden_size, c.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.projection((attn @ v).transpose(1, 2).reshape(b, n, d))


class BlipMLP(nn.Module):
    def __init__(self, c: BlipVisionConfig):
        super().__init__()
        self.fc1 = nn.Linear(c.hidden_size, c.intermediate_size)
        self.fc2 = nn.Linear(c.intermediate_size, c.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))  # exact erf GELU, as nn.GELU() in vit.py


class BlipEncoderLayer(nn.Module):
    def __init__(self, c: BlipVisionConfig):
        super().__init__()
        self.self_attn = BlipAttention(c)
        self.layer_norm1 = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.mlp = BlipMLP(c)
        self.layer_norm2 = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class BlipEncoder(nn.Module):
    def __init__(self, c: BlipVisionConfig):
        super().__init__()
        self.layers = nn.ModuleList([BlipEncoderLayer(c) for _ in range(c.num_hidden_layers)])
        self.gradient_checkpointing = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            if self.gradient_checkpointing and self.training:
                x = torch.utils.checkpoint.checkpoint(layer, x)
            else:
                x = layer(x)
        return x


class BlipVisionModel(nn.Module):
    """pixel_values [B, 3, S, S] (normalized) -> image_embeds [B, N, D] after post_layernorm."""

    def __init__(self, c: BlipVisionConfig):
        super().__init__()
        self.config = c
        self.embeddings = BlipVisionEmbeddings(c)
        self.encoder = BlipEncoder(c)
        self.post_layernorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.post_layernorm(self.encoder(self.embeddings(pixel_values)))


# -------------------------------------------------------------------------------------------- text
def extended_mask(mask: torch.Tensor, causal: bool, dtype: torch.dtype) -> torch.Tensor:
    """[B, T] 1/0 padding mask -> additive [B, 1, T|1, T] mask (causal: query i sees keys <= i)."""
    m = mask[:, None, None, :].to(dtype)
    if causal:
        t = mask.shape[1]
        seq = torch.arange(t, device=mask.device)
        m = m * (seq[None, :] <= seq[:, None]).to(dtype)[None, None, :, :]
    return (1.0 - m) * MASK_VALUE


class BlipTextEmbeddings(nn.Module):
    def __init__(self, c: BlipTextConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size, padding_idx=c.pad_token_id)
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)
        # non-persistent: the parity files (and newer HF checkpoints) leave position_ids out
        self.register_buffer('position_ids', torch.arange(c.max_position_embeddings)[None, :], persistent=False)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        pos = self.position_ids[:, : input_ids.shape[1]]  # positions start at 0 (no KV cache here)
        return self.dropout(self.LayerNorm(self.word_embeddings(input_ids) + self.position_embeddings(pos)))


class BlipTextSelfAttention(nn.Module):
    def __init__(self, c: BlipTextConfig, is_cross_attention: bool):
        super().__init__()
        self.num_attention_heads = c.num_attention_heads
        self.attention_head_size = c.hidden_size // c.num_attention_heads
        kv_width = c.encoder_hidden_size if is_cross_attention else c.hidden_size
        self.query = nn.Linear(c.hidden_size, c.hidden_size)
        self.key = nn.Linear(kv_width, c.hidden_size)
        self.value = nn.Linear(kv_width, c.hidden_size)
        self.dropout = nn.Dropout(c.attention_probs_dropout_prob)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], x.shape[1], self.num_attention_heads, self.attention_head_size).permute(0, 2, 1, 3)

    def forward(self, hidden, mask_add=None, kv=None) -> torch.Tensor:
        src = hidden if kv is None else kv
        q, k, v = self._heads(self.query(hidden)), self._heads(self.key(src)), self._heads(self.value(src))
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.attention_head_size)
        if mask_add is not None:
            scores = scores + mask_add
        ctx = self.dropout(scores.softmax(dim=-1)) @ v
        ctx = ctx.permute(0, 2, 1, 3)
        return ctx.reshape(ctx.shape[0], ctx.shape[1], -1)


class BlipTextSelfOutput(nn.Module):
    def __init__(self, c: BlipTextConfig):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, hidden, residual):
        return self.LayerNorm(self.dropout(self.dense(hidden)) + residual)


class BlipTextAttention(nn.Module):
    def __init__(self, c: BlipTextConfig, is_cross_attention: bool = False):
        super().__init__()
        self.self = BlipTextSelfAttention(c, is_cross_attention)
        self.output = BlipTextSelfOutput(c)

    def forward(self, hidden, mask_add=None, kv=None):
        return self.output(self.self(hidden, mask_add, kv), hidden)


class BlipTextIntermediate(nn.Module):
    def __init__(self, c: BlipTextConfig):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.intermediate_size)

    def forward(self, x):
        return F.gelu(self.dense(x))


class BlipTextOutput(nn.Module):
    def __init__(self, c: BlipTextConfig):
        super().__init__()
        self.dense = nn.Linear(c.intermediate_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.hidden_dropout_prob)

    def forward(self, hidden, residual):
        return self.LayerNorm(self.dropout(self.dense(hidden)) + residual)


class BlipTextLayer(nn.Module):
    def __init__(self, c: BlipTextConfig):
        super().__init__()
        self.attention = BlipTextAttention(c)
        if c.add_cross_attention:
            self.crossattention = BlipTextAttention(c, is_cross_attention=True)
        self.intermediate = BlipTextIntermediate(c)
        self.output = BlipTextOutput(c)

    def forward(self, hidden, self_mask, image_embeds=None, image_mask=None):
        hidden = self.attention(hidden, self_mask)
        if image_embeds is not None:  # image-grounded / decoder mode; text-only mode skips it
            hidden = self.crossattention(hidden, image_mask, image_embeds)
        return self.output(self.intermediate(hidden), hidden)


class BlipTextEncoder(nn.Module):
    def __init__(self, c: BlipTextConfig):
        super().__init__()
        self.layer = nn.ModuleList([BlipTextLayer(c) for _ in range(c.num_hidden_layers)])
        self.gradient_checkpointing = False

    def forward(self, hidden, self_mask, image_embeds=None, image_mask=None):
        for layer in self.layer:
            if self.gradient_checkpointing and self.training:
                hidden = torch.utils.checkpoint.checkpoint(layer, hidden, self_mask, image_embeds, image_mask)
            else:
                hidden = layer(hidden, self_mask, image_embeds, image_mask)
        return hidden


class BlipTextModel(nn.Module):
    """BERT without token-type embeddings or pooler. Modes:
    text-only: image_embeds=None; image-grounded: image_embeds given; decoder: causal=True (+ image)."""

    def __init__(self, c: BlipTextConfig):
        super().__init__()
        self.config = c
        self.embeddings = BlipTextEmbeddings(c)
        self.encoder = BlipTextEncoder(c)

    def forward(self, input_ids, attention_mask=None, image_embeds=None, image_attention_mask=None, causal=False):
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.embeddings(input_ids)
        self_mask = extended_mask(attention_mask, causal, hidden.dtype)
        image_mask = None
        if image_embeds is not None and image_attention_mask is not None:
            image_mask = extended_mask(image_attention_mask, False, hidden.dtype)
        return self.encoder(hidden, self_mask, image_embeds, image_mask)


class BlipTextPredictionHeadTransform(nn.Module):
    def __init__(self, c: BlipTextConfig):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)

    def forward(self, x):
        return self.LayerNorm(F.gelu(self.dense(x)))


class BlipTextLMPredictionHead(nn.Module):
    def __init__(self, c: BlipTextConfig):
        super().__init__()
        self.transform = BlipTextPredictionHeadTransform(c)
        self.decoder = nn.Linear(c.hidden_size, c.vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(c.vocab_size))
        self.decoder.bias = self.bias  # one tensor under two keys, as HF (and BERT) do

    def forward(self, x):
        return self.decoder(self.transform(x))


class BlipTextOnlyMLMHead(nn.Module):
    def __init__(self, c: BlipTextConfig):
        super().__init__()
        self.predictions = BlipTextLMPredictionHead(c)

    def forward(self, x):
        return self.predictions(x)


class BlipTextLMHeadModel(nn.Module):
    """Causal BERT decoder with cross-attention and an LM head tied to the word embeddings."""

    def __init__(self, c: BlipTextConfig):
        super().__init__()
        self.config = c
        self.bert = BlipTextModel(c)
        self.cls = BlipTextOnlyMLMHead(c)
        self.tie_weights()

    def tie_weights(self) -> None:
        """Share the LM head weight with the word embeddings. Call again after load_state_dict:
        loading copies values into both parameters, so they would stay equal but untied."""
        self.cls.predictions.decoder.weight = self.bert.embeddings.word_embeddings.weight
        self.cls.predictions.decoder.bias = self.cls.predictions.bias

    def forward(self, input_ids, attention_mask, image_embeds, image_attention_mask=None):
        hidden = self.bert(input_ids, attention_mask, image_embeds, image_attention_mask, causal=True)
        return self.cls(hidden)


def lm_loss(logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.1) -> torch.Tensor:
    """BLIP's captioning loss: predict token t+1 from position t, -100 labels ignored (pad, prompt),
    cross entropy with label smoothing 0.1, averaged over the counted tokens."""
    shifted = logits[:, :-1, :].contiguous()
    targets = labels[:, 1:].contiguous()
    return F.cross_entropy(shifted.view(-1, shifted.shape[-1]), targets.view(-1), ignore_index=-100, label_smoothing=label_smoothing)


# ----------------------------------------------------------------------------------- full models
class _ImageMixin:
    vision_model: BlipVisionModel

    def image_embeds(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """[B, 3, S, S] normalized pixels -> [B, N, Dv] image tokens."""
        return self.vision_model(pixel_values)


class _RetrievalMixin(_ImageMixin):
    text_encoder: BlipTextModel
    vision_proj: nn.Linear
    text_proj: nn.Linear
    itm_head: nn.Linear

    def image_feat(self, image_embeds: torch.Tensor) -> torch.Tensor:
        """L2-normalized ITC image feature [B, E] from the CLS image token."""
        return F.normalize(self.vision_proj(image_embeds[:, 0, :]), dim=-1)

    def text_hidden(self, input_ids, attention_mask) -> torch.Tensor:
        """Text-only encoder output [B, T, Dt] (no cross-attention)."""
        return self.text_encoder(input_ids, attention_mask)

    def text_feat(self, input_ids, attention_mask) -> torch.Tensor:
        """L2-normalized ITC text feature [B, E] from the [CLS] token, text-only mode."""
        return F.normalize(self.text_proj(self.text_hidden(input_ids, attention_mask)[:, 0, :]), dim=-1)

    def itm_hidden(self, input_ids, attention_mask, image_embeds) -> torch.Tensor:
        """Image-grounded text encoder output [B, T, Dt]; ITM reads its first token."""
        return self.text_encoder(input_ids, attention_mask, image_embeds=image_embeds)

    def itm_logits(self, input_ids, attention_mask, image_embeds) -> torch.Tensor:
        """ITM logits [B, 2] (index 1 = match). The caller sets the first token ([ENC] or [CLS])."""
        return self.itm_head(self.itm_hidden(input_ids, attention_mask, image_embeds)[:, 0, :])


class _CaptionMixin(_ImageMixin):
    text_decoder: BlipTextLMHeadModel

    def decoder_logits(self, input_ids, attention_mask, image_embeds) -> torch.Tensor:
        """Causal LM logits [B, T, V]; input_ids start with [DEC]."""
        return self.text_decoder(input_ids, attention_mask, image_embeds)

    @torch.no_grad()
    def greedy(self, pixel_values, prefix_ids, n_tokens: int, image_embeds=None) -> torch.Tensor:
        """Argmax decoding of n_tokens after prefix_ids ([T] or [B, T]); no stopping, no penalties."""
        if image_embeds is None:
            image_embeds = self.image_embeds(pixel_values)
        ids = torch.as_tensor(prefix_ids, dtype=torch.long)
        if ids.dim() == 1:
            ids = ids[None].expand(image_embeds.shape[0], -1)
        for _ in range(n_tokens):
            logits = self.decoder_logits(ids, torch.ones_like(ids), image_embeds)
            ids = torch.cat([ids, logits[:, -1, :].argmax(-1, keepdim=True)], dim=1)
        return ids


class BlipRetrieval(_RetrievalMixin, nn.Module):
    """HF BlipForImageTextRetrieval's key set: vision_model, text_encoder, vision_proj, text_proj, itm_head."""

    def __init__(self, cfg: BlipConfig):
        super().__init__()
        self.config = cfg
        self.vision_model = BlipVisionModel(cfg.vision)
        self.text_encoder = BlipTextModel(cfg.text)
        self.vision_proj = nn.Linear(cfg.vision.hidden_size, cfg.projection_dim)
        self.text_proj = nn.Linear(cfg.text.hidden_size, cfg.projection_dim)
        self.itm_head = nn.Linear(cfg.text.hidden_size, 2)


class BlipCaptioning(_CaptionMixin, nn.Module):
    """HF BlipForConditionalGeneration's key set: vision_model, text_decoder."""

    def __init__(self, cfg: BlipConfig):
        super().__init__()
        self.config = cfg
        self.vision_model = BlipVisionModel(cfg.vision)
        self.text_decoder = BlipTextLMHeadModel(cfg.text)

    def load_state_dict(self, state_dict, strict: bool = True):
        res = super().load_state_dict(state_dict, strict=strict)
        self.text_decoder.tie_weights()
        return res


class BlipForTraining(_RetrievalMixin, _CaptionMixin, nn.Module):
    """Everything BLIP fine-tuning needs, with ONE vision encoder shared by ITC, ITM and captioning.

    Submodules: vision_model, text_encoder, text_decoder, vision_proj, text_proj, itm_head, and
    `temp` (learned ITC temperature, init 0.07; call clamp_temp() after each optimizer step).

    Forward pieces (all inherited, small and separately callable):
      image_embeds(pixels) -> [B, N, Dv]         image_feat(image_embeds) -> [B, E]
      text_feat(ids, mask) -> [B, E]              itm_logits(ids, mask, image_embeds) -> [B, 2]
      decoder_logits(ids, mask, image_embeds) -> [B, T, V]
      caption_loss(ids, mask, image_embeds, labels) -> LM loss (label smoothing 0.1)
      itc_logits(image_feat, text_feat) -> (i2t, t2i) similarity / temp
    Weights:
      retrieval_state_dict() / captioning_state_dict(): HF-named dicts (vision weights in both)
      load_hf_state_dicts(retrieval_sd, captioning_sd=None, vision_from='retrieval')
    """

    def __init__(self, cfg: BlipConfig, temp: float = 0.07):
        super().__init__()
        self.config = cfg
        self.vision_model = BlipVisionModel(cfg.vision)
        self.text_encoder = BlipTextModel(cfg.text)
        self.text_decoder = BlipTextLMHeadModel(cfg.text)
        self.vision_proj = nn.Linear(cfg.vision.hidden_size, cfg.projection_dim)
        self.text_proj = nn.Linear(cfg.text.hidden_size, cfg.projection_dim)
        self.itm_head = nn.Linear(cfg.text.hidden_size, 2)
        self.temp = nn.Parameter(torch.tensor(temp))

    @torch.no_grad()
    def clamp_temp(self) -> None:
        self.temp.clamp_(0.001, 0.5)  # BLIP's bounds, applied in place like blip_retrieval.py

    def itc_logits(self, image_feat, text_feat):
        """(image->text, text->image) logits: cosine similarities divided by the temperature."""
        sim = image_feat @ text_feat.t() / self.temp.clamp(0.001, 0.5)
        return sim, sim.t()

    def caption_loss(self, input_ids, attention_mask, image_embeds, labels, label_smoothing: float = 0.1):
        """labels: input_ids with -100 at pad and prompt positions (BLIP masks the prompt)."""
        return lm_loss(self.decoder_logits(input_ids, attention_mask, image_embeds), labels, label_smoothing)

    def retrieval_state_dict(self) -> dict[str, torch.Tensor]:
        keep = ('vision_model.', 'text_encoder.', 'vision_proj.', 'text_proj.', 'itm_head.')
        return {k: v for k, v in self.state_dict().items() if k.startswith(keep)}

    def captioning_state_dict(self) -> dict[str, torch.Tensor]:
        keep = ('vision_model.', 'text_decoder.')
        return {k: v for k, v in self.state_dict().items() if k.startswith(keep)}

    def load_weights_dir(self, d: Path) -> None:
        """A weights/ folder as training and bundles write it: retrieval.safetensors and
        captioning.safetensors (HF names, strict), the ITC temperature from config.json."""
        d = Path(d)
        self.load_hf_state_dicts(load_hf_weights(d / 'retrieval.safetensors'), load_hf_weights(d / 'captioning.safetensors'), vision_from='retrieval')
        temp = json.loads((d / 'config.json').read_text()).get('itc_temp')
        if temp is not None:
            with torch.no_grad():
                self.temp.fill_(float(temp))

    def load_hf_state_dicts(self, retrieval_sd, captioning_sd=None, vision_from: str = 'retrieval') -> None:
        """Load HF-named retrieval (+ captioning) dicts strictly. The two checkpoints usually carry
        different vision encoders; only one is kept (`vision_from`: 'retrieval' or 'captioning')."""
        ret = BlipRetrieval(self.config)
        ret.load_state_dict(retrieval_sd, strict=True)
        own = {k: v for k, v in ret.state_dict().items()}
        if captioning_sd is not None:
            cap = BlipCaptioning(self.config)
            cap.load_state_dict(captioning_sd, strict=True)
            csd = cap.state_dict()
            own.update({k: v for k, v in csd.items() if k.startswith('text_decoder.')})
            if vision_from == 'captioning':
                own.update({k: v for k, v in csd.items() if k.startswith('vision_model.')})
        missing, unexpected = super().load_state_dict(own, strict=False)
        allowed = {'temp'} | ({k for k in self.state_dict() if k.startswith('text_decoder.')} if captioning_sd is None else set())
        if unexpected or set(missing) - allowed:
            raise RuntimeError(f'unexpected {unexpected}, missing {sorted(set(missing) - allowed)}')
        self.text_decoder.tie_weights()


# -------------------------------------------------------------------------------------- loaders
def load_retrieval(path: str | Path, cfg: BlipConfig) -> BlipRetrieval:
    """BlipRetrieval from a .safetensors / .bin under HF names, strict. Eval mode."""
    m = BlipRetrieval(cfg)
    m.load_state_dict(normalize_hf_state_dict(load_state_dict(path)), strict=True)
    return m.eval()


def load_captioning(path: str | Path, cfg: BlipConfig) -> BlipCaptioning:
    """BlipCaptioning from a .safetensors / .bin under HF names, strict, LM head re-tied. Eval mode."""
    m = BlipCaptioning(cfg)
    m.load_state_dict(normalize_hf_state_dict(load_state_dict(path)), strict=True)
    return m.eval()


TIED = [  # (LM head key, the key it shares its tensor with)
    ('text_decoder.cls.predictions.decoder.weight', 'text_decoder.bert.embeddings.word_embeddings.weight'),
    ('text_decoder.cls.predictions.decoder.bias', 'text_decoder.cls.predictions.bias'),
]


def normalize_hf_state_dict(sd: dict) -> dict:
    """Make an HF BLIP state dict loadable with strict=True: drop the position_ids buffers older
    checkpoints store (recomputed here), and restore a tied key that a safetensors conversion saved
    only once (safetensors refuses shared tensors, so one name of each tied pair may be missing)."""
    sd = {k: v for k, v in sd.items() if not k.endswith('embeddings.position_ids')}
    for a, b in TIED:
        if a in sd and b not in sd:
            sd[b] = sd[a]
        elif b in sd and a not in sd and any(k.startswith('text_decoder.') for k in sd):
            sd[a] = sd[b]
    return sd


def load_hf_weights(path_or_dict) -> dict:
    """An HF-named BLIP checkpoint (a .safetensors / .bin path, or its loaded dict) as float32
    tensors, normalized for strict loading (float16 bundles included)."""
    sd = load_state_dict(path_or_dict) if isinstance(path_or_dict, (str, Path)) else path_or_dict
    return {k: v.float() for k, v in normalize_hf_state_dict(sd).items()}
