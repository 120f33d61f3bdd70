"""Multi-scale context encoder (Do, Nguyen & Nguyen, "A multi-scale context encoder for high quality
restoration of facial images", 2020) — paper 000 of this study.

The paper keeps Pathak et al.'s context encoder (:mod:`facefill.models.context_encoder`: an
encoder–decoder that paints the missing centre, trained with a reconstruction and an adversarial
loss) and replaces the single encoder by **three sub-encoders** on an image pyramid.

Image pyramid (§II-A). From the masked 250×250 image ``I_0`` we build ``I_1`` (125×125) and
``I_2`` (63×63), each half the side of the previous one (rounded up, as the table's sizes show).
We downscale with antialiased bilinear interpolation; the hole, filled with the CE's mean colour,
is downscaled with the image ("at each scale level the corresponding image mask is generated").

Sub-encoders (Table I). ``E_k`` sees ``I_k``. Every 3×3 convolution halves the side, so the
table's sizes fix the geometry: stride 2 and padding 1, ``out = ⌊(in + 2 − 3)/2⌋ + 1 = ⌈in/2⌉``
(250 → 125 → 63 → 32); the last layer, a 1×1 convolution to 512 channels, maps 32 → 16, so it
also has stride 2 (padding 0). With ``w`` = 32 (the paper's width):

    E_0: 250²×3  →(32, 3×3)→ 125²×32 →(64, 3×3)→ 63²×64 →(128, 3×3)→ 32²×128 →(512, 1×1)→ 16²×512
    E_1: 125²×3  →(64, 3×3)→  63²×64 →(128, 3×3)→ 32²×128 →(512, 1×1)→ 16²×512
    E_2:  63²×3  →(128, 3×3)→ 32²×128 →(512, 1×1)→ 16²×512

Each convolution is followed, in the paper's order, by LeakyReLU (slope 0.2, the CE's) and then
BatchNorm. Table I writes E_2's first kernel as ``3×3×64`` although its input has 3 channels — a
slip: we use ``3×3×3``. The text's "pooling" does not appear in Table I; the stride-2
convolutions are what the sizes require.

Aggregation (§II-B, §III-B). The three 16×16×512 maps ``f_k`` are combined by

    addition:       F = f_0 + f_1 + f_2          (16×16×512)
    concatenation:  F = [f_0; f_1; f_2]          (16×16×1536)

Context layer (our reading; ``context="fc"`` or ``"channel_fc"``). Tables I–II read literally (``context="none"``)
give a model that cannot see the hole's surroundings: the decoder upsamples the *whole* 16×16 map
×4 into the 64×64 patch, so patch row ``i`` depends only on image rows ≈ 4i−20…4i+27 — the top of
the patch is painted from the top of the face, and rows 32–35 see only dropped pixels. The paper
"leverages the main concept of Context Encoder", whose encoder and decoder are joined by a
**channel-wise fully-connected layer** (Pathak et al. §3.1): each of the C channels' H×W maps is
mapped to an H×W map by its own fully-connected layer (C·(HW)² weights, no cross-channel
parameters), followed by a stride-1 1×1 convolution that propagates information across channels.
``context="channel_fc"`` inserts it on the aggregated map F, before the decoder:

    F'[c] = W_c · vec(F[c]) + b_c      (W_c ∈ R^{HW×HW}),     F'' = BN(LReLU(Conv1×1(F')))

``train.lua`` itself writes the CE's bottleneck as a *full* fully-connected layer (a 4×4 valid
conv to a 4000-d code z and an up-conv back); ``context="fc"`` (notebook 01's choice) inserts that on F:
``z = LReLU(BN(W_e vec(F)))``, ``F'' = ReLU(BN(W_d z))``. Its code size is a second knob, which
lets us match the CE in parameters *and* multiply-adds at once (the channel-wise layer has
C·(HW)² weights and as many multiply-adds, so with it the match forces a 2-d CE bottleneck). Either way
every patch pixel depends on the whole image, its neighbourhood ring included. The config's
default stays ``"none"``, the architecture as printed (Tables I–II, the parameter-count claim)
(``tests/test_multiscale.py`` checks the gradient of every patch pixel w.r.t. the input ring).

Decoder (Table II). Nearest-neighbour ×2 upsampling → 3×3 conv to 128 → ×2 upsampling → 3×3 conv
to 64 → 3×3 conv to 3: the 64×64×3 hole patch. Table II lists a 1536-channel input, i.e. the
concatenation case; with addition the first conv has ``3×3×512`` kernels. Hidden convs are followed
by ReLU and BatchNorm; the last one by tanh (images live in [-1, 1]; a ReLU + BatchNorm output, as a
literal reading of "after each convolutional layer" would give, cannot produce an image).

Discriminator and losses. The paper specifies neither; we use the context encoder's: the DCGAN
patch discriminator :class:`~facefill.models.context_encoder.PatchDiscriminator` and

    L_G = λ_rec · L_rec + λ_adv · L_adv,   λ_rec = 1 − λ_adv = 0.999,

with ``L_rec`` either the CE's overlap-weighted L2 (``rec_loss="l2"``, default: the fair
comparison trains both methods on the same loss) or ``(1 − α)·L1 + α·(1 − MS-SSIM)`` on the patch
(``rec_loss="l1+ms_ssim"``, α = 0.84 after Zhao et al.; the metrics the paper reports; MS-SSIM with
3 scales, the most a 64×64 patch admits). D minimises ``BCE(D(real), 1) + BCE(D(fake), 0)``.

Optimisation (§III). "Mini-batch 32, momentum 0.9, initial learning rate 0.001 reduced by 10 %
every 50 epochs, 300 epochs": ``optimizer="sgd"`` with ``momentum=0.9`` and the step decay
``lr_t = lr · 0.9^⌊t / lr_decay_every⌋`` (the ``paper`` profile). Short CPU runs use the CE's Adam
(β1 = 0.5) instead. The decay counter is a buffer of the generator, so it is checkpointed and a
resumed run continues the schedule exactly.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..adversarial import InpaintingTask
from ..errors import ConfigError
from .context_encoder import (
    CentreHole,
    PatchDiscriminator,
    crop_centre,
    drop_centre,
    init_dcgan_weights,
    overlap_weights,
    paste_centre,
)

AGGREGATIONS = ("add", "concat")
CONTEXTS = ("fc", "channel_fc", "none")
REC_LOSSES = ("l2", "l1+ms_ssim")
OPTIMIZERS = ("adam", "sgd")


def half(side: int) -> int:
    """Side after one 3×3 stride-2 padding-1 convolution (or one pyramid level): ⌈side/2⌉."""
    return (side + 2 - 3) // 2 + 1


@dataclass
class MultiScaleConfig:
    image_size: int = 250  # side of I_0 (Table I: 250; I_1, I_2 are ⌈/2⌉, ⌈/4⌉)
    hole: int = 64  # side of the square centre hole = the decoder's output (Table II: 64)
    overlap: int = 4  # px of the hole border the encoders see (the CE's overlapPred; 0: the full hole is dropped)
    overlap_weight: float = 10.0  # L2 weight of that border (CE); used by rec_loss="l2"
    n_scales: int = 3  # pyramid levels / sub-encoders (paper: 3)
    aggregation: str = "add"  # add (16×16×512) | concat (16×16×1536)
    context: str = "none"  # none: Tables I-II as printed (blind to the hole's surroundings) | fc: the CE's FC bottleneck on F | channel_fc: Pathak's channel-wise FC
    bottleneck: int = 1000  # code size of context="fc" (the CE's nBottleneck)
    width: int = 32  # channels of E_0's first conv; Table I: 32 → 64 → 128 → 512 = (w, 2w, 4w, 16w)
    d_width: int = 64  # discriminator width (the CE's ndf)
    rec_loss: str = "l2"  # l2 (the CE's weighted MSE) | l1+ms_ssim
    ms_ssim_alpha: float = 0.84  # weight of 1 − MS-SSIM in rec_loss="l1+ms_ssim"
    lambda_adv: float = 0.001  # the CE's adversarial weight
    optimizer: str = "adam"  # adam (CE: β1 = momentum) | sgd (paper: momentum 0.9)
    lr: float = 0.002  # generator learning rate (CE: 10 × D's; paper: 0.001)
    lr_d: float = 0.0002  # discriminator learning rate
    momentum: float = 0.5  # SGD momentum or Adam β1
    lr_decay: float = 0.9  # multiply both learning rates by this ... (paper: "reduced 10 %")
    lr_decay_every: int = 0  # ... every this many steps (paper: 50 epochs); 0 = constant

    def __post_init__(self):
        if self.aggregation not in AGGREGATIONS:
            raise ConfigError(f"aggregation={self.aggregation!r}: choose one of {AGGREGATIONS}.")
        if self.context not in CONTEXTS:
            raise ConfigError(f"context={self.context!r}: choose one of {CONTEXTS}.")
        if self.bottleneck < 1:
            raise ConfigError(f"bottleneck={self.bottleneck}: must be >= 1.")
        if self.rec_loss not in REC_LOSSES:
            raise ConfigError(f"rec_loss={self.rec_loss!r}: choose one of {REC_LOSSES}.")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer={self.optimizer!r}: choose one of {OPTIMIZERS}.")
        if not 1 <= self.n_scales <= 3:
            raise ConfigError(f"n_scales={self.n_scales}: E_k has 3 − k strided 3×3 convs, so 1 ≤ n_scales ≤ 3.")
        if self.width < 1 or self.d_width < 1:
            raise ConfigError(f"width={self.width}, d_width={self.d_width}: both must be >= 1.")
        if self.hole != 4 * self.feature_side:
            raise ConfigError(
                f"hole={self.hole} but image_size={self.image_size} gives {self.feature_side}×{self.feature_side} "
                f"features, which Table II's two ×2 upsamplings turn into {4 * self.feature_side}×{4 * self.feature_side}: "
                f"use hole={4 * self.feature_side} (250 px → 64)."
            )
        if self.hole > self.image_size or self.hole & (self.hole - 1) or self.hole < 16:
            raise ConfigError(f"hole={self.hole}: must be a power of two ≥ 16 that fits the image (CE discriminator).")
        if not 0 <= 2 * self.overlap < self.hole:
            raise ConfigError(f"overlap={self.overlap}: must satisfy 0 <= 2*overlap < hole.")
        if not 0.0 <= self.lambda_adv < 1.0:
            raise ConfigError(f"lambda_adv={self.lambda_adv}: must be in [0, 1).")
        if not 0.0 <= self.ms_ssim_alpha <= 1.0:
            raise ConfigError(f"ms_ssim_alpha={self.ms_ssim_alpha}: must be in [0, 1].")
        if self.lr <= 0 or self.lr_d <= 0 or not 0 < self.lr_decay <= 1 or self.lr_decay_every < 0:
            raise ConfigError("lr and lr_d must be > 0, 0 < lr_decay <= 1 and lr_decay_every >= 0.")

    @property
    def scale_sizes(self) -> list[int]:
        """Sides of I_0..I_{n-1}: 250, 125, 63."""
        sizes = [self.image_size]
        for _ in range(self.n_scales - 1):
            sizes.append(half(sizes[-1]))
        return sizes

    @property
    def feature_side(self) -> int:
        """Side of every sub-encoder's output: three halvings of I_0 then the stride-2 1×1 conv (250 → 16)."""
        s = self.image_size
        for _ in range(4):
            s = half(s) if s > 1 else s
        return s

    @property
    def feature_channels(self) -> int:
        return 16 * self.width  # 512 for the paper's width 32

    @property
    def hole_box(self) -> tuple[int, int, int, int]:
        """(top, left, height, width) of the centred hole: (93, 93, 64, 64) in a 250 image."""
        t = (self.image_size - self.hole) // 2
        return t, t, self.hole, self.hole


# --------------------------------------------------------------------------- networks

def _conv_lrelu_bn(cin: int, cout: int, k: int, stride: int = 2) -> list[nn.Module]:
    """Table I layer: conv (stride 2; 3×3 pad 1 or 1×1 pad 0) → LeakyReLU(0.2) → BatchNorm (the paper's order)."""
    return [nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2), nn.LeakyReLU(0.2, inplace=True), nn.BatchNorm2d(cout)]


class SubEncoder(nn.Module):
    """E_k: (3 − k) strided 3×3 convs (channels w·2^k … 4w) then a strided 1×1 conv to 16w (Table I)."""

    def __init__(self, k: int, width: int = 32):
        super().__init__()
        chans = [width * 2**i for i in range(k, 3)]  # E_0: 32, 64, 128; E_1: 64, 128; E_2: 128
        layers: list[nn.Module] = []
        cin = 3
        for c in chans:
            layers += _conv_lrelu_bn(cin, c, 3)
            cin = c
        layers += _conv_lrelu_bn(cin, 16 * width, 1)
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Decoder(nn.Module):
    """Table II: up ×2 → conv3×3 → 4w, up ×2 → conv3×3 → 2w, conv3×3 → 3 (ReLU + BatchNorm; tanh out)."""

    def __init__(self, in_channels: int, width: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(in_channels, 4 * width, 3, padding=1), nn.ReLU(True), nn.BatchNorm2d(4 * width),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(4 * width, 2 * width, 3, padding=1), nn.ReLU(True), nn.BatchNorm2d(2 * width),
            nn.Conv2d(2 * width, 3, 3, padding=1), nn.Tanh(),
        )

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.net(f)


class ChannelWiseFC(nn.Module):
    """Pathak et al.'s channel-wise fully-connected layer on a (N, C, H, W) map, then a 1×1 conv.

    Channel ``c``'s map is flattened to ``HW`` values and multiplied by its own ``HW × HW`` matrix
    (one batched matmul over channels), so any output location sees every input location of its
    channel; the stride-1 1×1 convolution (LeakyReLU, BatchNorm: Table I's order) then mixes channels.
    """

    def __init__(self, channels: int, side: int):
        super().__init__()
        self.side = side
        self.weight = nn.Parameter(torch.randn(channels, side * side, side * side) * 0.02)
        self.bias = nn.Parameter(torch.zeros(channels, 1, side * side))
        self.mix = nn.Sequential(*_conv_lrelu_bn(channels, channels, 1, stride=1))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        n, c, h, w = f.shape
        x = f.reshape(n, c, h * w).transpose(0, 1)  # (C, N, HW)
        y = torch.baddbmm(self.bias.to(x.dtype), x, self.weight.transpose(1, 2).to(x.dtype))  # (C, N, HW)
        return self.mix(y.transpose(0, 1).reshape(n, c, h, w).contiguous(memory_format=torch.channels_last))


class FCBottleneck(nn.Module):
    """The CE's bottleneck (``train.lua``) on the aggregated (N, C, H, W) map: a fully-connected layer
    to a ``bottleneck``-d code z (BatchNorm, LeakyReLU) and one back to C×H×W (BatchNorm, ReLU)."""

    def __init__(self, channels: int, side: int, bottleneck: int):
        super().__init__()
        self.shape = (channels, side, side)
        flat = channels * side * side
        self.encode = nn.Sequential(nn.Linear(flat, bottleneck, bias=False), nn.BatchNorm1d(bottleneck), nn.LeakyReLU(0.2, True))
        self.decode = nn.Linear(bottleneck, flat, bias=False)
        self.bn = nn.BatchNorm2d(channels)
        self.act = nn.ReLU(True)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        h = self.decode(self.encode(torch.flatten(f, 1))).view(f.shape[0], *self.shape)
        return self.act(self.bn(h))


def pyramid(x: torch.Tensor, sizes: list[int]) -> list[torch.Tensor]:
    """[I_0, I_1, ...]: each level an antialiased bilinear downscale of the previous one."""
    out = [x]
    for s in sizes[1:]:
        out.append(F.interpolate(out[-1], size=(s, s), mode="bilinear", antialias=True, align_corners=False))
    return out


class MultiScaleContextEncoder(nn.Module):
    """The generator: pyramid → sub-encoders → aggregation → decoder → the hole patch."""

    def __init__(self, cfg: MultiScaleConfig):
        super().__init__()
        self.cfg = cfg
        self.encoders = nn.ModuleList(SubEncoder(k, cfg.width) for k in range(cfg.n_scales))
        c = cfg.feature_channels * (cfg.n_scales if cfg.aggregation == "concat" else 1)
        side = cfg.feature_side
        self.context = {"fc": lambda: FCBottleneck(c, side, cfg.bottleneck), "channel_fc": lambda: ChannelWiseFC(c, side),
                        "none": nn.Identity}[cfg.context]()
        self.decoder = Decoder(c, cfg.width)
        self.register_buffer("n_steps", torch.zeros((), dtype=torch.long))  # optimisation steps taken (lr schedule)
        init_dcgan_weights(self)

    def features(self, masked: torch.Tensor) -> list[torch.Tensor]:
        if masked.shape[-1] != self.cfg.image_size or masked.shape[-2] != self.cfg.image_size:
            raise ConfigError(f"input is {tuple(masked.shape[-2:])}; this model takes {self.cfg.image_size}×{self.cfg.image_size} images.")
        return [e(x) for e, x in zip(self.encoders, pyramid(masked, self.cfg.scale_sizes))]

    def aggregate(self, feats: list[torch.Tensor]) -> torch.Tensor:
        if self.cfg.aggregation == "concat":
            return torch.cat(feats, 1)
        out = feats[0]
        for f in feats[1:]:
            out = out + f
        return out

    def forward(self, masked: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.context(self.aggregate(self.features(masked))))


def layer_shapes(cfg: MultiScaleConfig, batch: int = 1) -> list[tuple[str, tuple[int, ...], tuple[int, ...]]]:
    """(layer, input HWC, output HWC) of every conv/upsample, by a forward pass — the rows of Tables I and II."""
    model = MultiScaleContextEncoder(cfg).eval()
    rows: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = []

    def hook(name):
        def fn(mod, inp, out):
            i, o = inp[0].shape, out.shape
            rows.append((name, (i[2], i[3], i[1]), (o[2], o[3], o[1])))
        return fn

    handles = []
    for k, enc in enumerate(model.encoders):
        for j, m in enumerate(mm for mm in enc.net if isinstance(mm, nn.Conv2d)):
            handles.append(m.register_forward_hook(hook(f"E{k}.conv{j} {m.out_channels}, {m.kernel_size[0]}×{m.kernel_size[1]}×{m.in_channels}")))
    for m in model.decoder.net:
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(hook(f"D conv {m.out_channels}, {m.kernel_size[0]}×{m.kernel_size[1]}×{m.in_channels}")))
        elif isinstance(m, nn.Upsample):
            handles.append(m.register_forward_hook(hook("D upsampling")))
    with torch.no_grad():
        model(torch.zeros(batch, 3, cfg.image_size, cfg.image_size))
    for h in handles:
        h.remove()
    return rows


# --------------------------------------------------------------------------- geometry and losses

# The CE's hole geometry works for any config with ``hole_box`` and ``overlap``: reuse it.
drop_hole, crop_hole, paste_hole = drop_centre, crop_centre, paste_centre


def context_crop_box(image_size: int, hole: int, crop: int = 128) -> tuple[int, int]:
    """(top, left) of the ``crop``-px window whose centre hole is the image's centre hole.

    The fair CE baseline: Pathak's geometry (128 px context, 64 px centre hole) cut from the 250 px
    image so that both methods fill exactly the same 64×64 pixels (no resizing).
    """
    t_hole = (image_size - hole) // 2
    top = t_hole - (crop - hole) // 2
    if top < 0 or top + crop > image_size:
        raise ConfigError(f"a {crop}-px context around the centre {hole}-px hole does not fit a {image_size}-px image.")
    return top, top


def weighted_l2(patch, target, cfg: MultiScaleConfig) -> torch.Tensor:
    """The CE's reconstruction loss: MSE with the ``overlap``-px border of the patch weighted ×overlap_weight."""
    return (overlap_weights(cfg, patch.device) * (patch.float() - target.float()) ** 2).mean()


def ms_ssim_3(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Differentiable 3-scale MS-SSIM of [0, 1] images, mean over the batch.

    pytorch-msssim's ``ms_ssim`` insists on 5 scales (sides > 160 px); a 64-px patch admits 3. We
    run its per-scale ``_ssim`` (11×11 Gaussian, σ = 1.5, K = (0.01, 0.03)) for 3 scales with the
    first three standard weights renormalised — the same definition as :func:`facefill.metrics.ms_ssim`.
    """
    from pytorch_msssim.ssim import _fspecial_gauss_1d, _ssim

    w = torch.tensor([0.0448, 0.2856, 0.3001], device=x.device, dtype=torch.float32)
    w = w / w.sum()
    win = _fspecial_gauss_1d(11, 1.5).to(x.device).repeat(x.shape[1], 1, 1, 1)
    levels = []
    for i in range(len(w)):
        s, cs = _ssim(x, y, win=win, data_range=1.0, size_average=False, K=(0.01, 0.03))
        if i < len(w) - 1:
            levels.append(torch.relu(cs))
            pad = [side % 2 for side in x.shape[2:]]
            x, y = F.avg_pool2d(x, 2, padding=pad), F.avg_pool2d(y, 2, padding=pad)
    levels.append(torch.relu(s))
    return torch.prod(torch.stack(levels) ** w.view(-1, 1, 1), dim=0).mean()


def l1_ms_ssim(patch, target, alpha: float) -> torch.Tensor:
    """(1 − α)·L1 + α·(1 − MS-SSIM), images mapped to [0, 1]; MS-SSIM with 3 scales (a 64-px patch)."""
    x, y = (patch.float().clamp(-1, 1) + 1) / 2, (target.float() + 1) / 2
    return (1 - alpha) * (x - y).abs().mean() + alpha * (1 - ms_ssim_3(x, y))


def reconstruction_loss(patch, target, cfg: MultiScaleConfig) -> torch.Tensor:
    return weighted_l2(patch, target, cfg) if cfg.rec_loss == "l2" else l1_ms_ssim(patch, target, cfg.ms_ssim_alpha)


def learning_rate(base: float, step: int, cfg: MultiScaleConfig) -> float:
    """Step decay of §III: ``base · lr_decay^⌊step / lr_decay_every⌋`` (constant when lr_decay_every = 0)."""
    return base if cfg.lr_decay_every == 0 else base * cfg.lr_decay ** (step // cfg.lr_decay_every)


# --------------------------------------------------------------------------- training task

class MultiScaleTask(CentreHole, InpaintingTask):
    """The multi-scale context encoder on the centre hole, trained by the CE's D-then-G step
    (:class:`facefill.adversarial.AdversarialTask`) with §III's optimiser and step decay."""

    def __init__(self, cfg: MultiScaleConfig, fused: bool | None = None):
        super().__init__(cfg, MultiScaleContextEncoder(cfg), PatchDiscriminator(cfg.hole, cfg.d_width), lr_g=cfg.lr,
                         lr_d=cfg.lr_d, betas=(cfg.momentum, 0.999), lambda_rec=1 - cfg.lambda_adv,
                         lambda_adv=cfg.lambda_adv, fused_adam=fused)

    def optimizer(self, params, lr: float, fused: bool) -> torch.optim.Optimizer:
        if self.cfg.optimizer == "sgd":
            return torch.optim.SGD(params, lr=lr, momentum=self.cfg.momentum, fused=fused)
        return super().optimizer(params, lr, fused)

    def reconstruction_loss(self, output: torch.Tensor, step) -> torch.Tensor:
        return reconstruction_loss(output, step.real, self.cfg)

    def training_step(self, images: torch.Tensor, autocast) -> dict[str, torch.Tensor]:
        step = int(self.generator.n_steps)
        if self.cfg.lr_decay_every:  # §III's step decay; otherwise the rates ``fit`` set (its linear decay) stand
            for name, base in (("generator", self.cfg.lr), ("discriminator", self.cfg.lr_d)):
                for group in self.optimizers[name].param_groups:
                    group["lr"] = learning_rate(base, step, self.cfg)
        logs = super().training_step(images, autocast)
        self.generator.n_steps += 1
        return {**logs, "lr": self.optimizers["generator"].param_groups[0]["lr"]}


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def multiply_adds(model: nn.Module, example: torch.Tensor) -> int:
    """Multiply-adds of one forward pass per image, counted by hooks on every conv, up-conv, linear
    and channel-wise FC layer (BatchNorm, activations, upsampling and pooling are not counted)."""
    total = 0

    def hook(mod, inp, out):
        nonlocal total
        x = inp[0]
        if isinstance(mod, nn.Conv2d):
            total += out[0].numel() * mod.in_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1]
        elif isinstance(mod, nn.ConvTranspose2d):
            total += x[0].numel() * mod.out_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1]
        elif isinstance(mod, nn.Linear):
            total += mod.in_features * mod.out_features
        elif isinstance(mod, ChannelWiseFC):
            total += mod.weight.numel()

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, ChannelWiseFC))]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(example[:1])
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return int(total)


def patch_input_gradient(model: nn.Module, cfg: MultiScaleConfig, pixel: tuple[int, int]) -> torch.Tensor:
    """|∂ patch[pixel] / ∂ input| summed over channels, (S, S): where in the image one patch pixel looks.

    Computed in eval mode on a random input (BatchNorm uses its running statistics, so images do
    not mix); the receptive-field figure and test read it.
    """
    was_training = model.training
    model.eval()
    try:
        x = (torch.rand(1, 3, cfg.image_size, cfg.image_size, generator=torch.Generator().manual_seed(0)) * 2 - 1).requires_grad_()
        model(x)[0, :, pixel[0], pixel[1]].sum().backward()
    finally:
        model.train(was_training)
    return x.grad[0].abs().sum(0)
