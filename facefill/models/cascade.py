"""Cascade context encoder (CCE): a 64×64 context encoder pre-fills the hole of a 128×128 one.

Zieliński, Struski, Śmieja, Tabor, *Cascade context encoder for improved inpainting* (2018),
``shared/papers/001_f310308051493f7a.txt``, §4. The latent measure of its §3 (NSD) lives in
:mod:`facefill.nsd`.

**Why.** Pathak et al.'s context encoder works better at 64×64 than at 128×128: two more layers are
not enough to carry the context needed for a four times larger hole. The cascade lets a trained
CE64 paint the overall content and the CE128 only refine it.

**The cascade** (§4.2). With ``F₆₄`` the trained CE64, ``F`` the CE128 being trained, ``M`` the mask
(1 = dropped), ``M̄ = 1 − M``, ``↘`` halving and ``↗`` doubling the resolution:

(i) drop the region ``M`` of ``P``; (ii) downscale image and mask and run CE64:
``F₆₄(↘M̄ ⊙ ↘P)``; (iii) upscale its fill into the hole of the full-size image:

    x = M̄ ⊙ P + M ⊙ ↗F₆₄(↘M̄ ⊙ ↘P)                                         (cascade input)

(iv) run CE128 on ``x``. CE64's weights are fixed during step two (we also keep its BatchNorm in
eval mode: its running statistics are part of the trained network). The losses of CE128 are
Pathak's, applied through the cascade:

    L_rec = ‖M ⊙ (P − F(x))‖₂                                                  (1)
    L_adv = max_D 𝔼_P [log D(P) + log(1 − D(F(x)))]                            (2)

and ``L = λ_rec·L_rec + λ_adv·L_adv`` with Pathak's λ_adv = 0.001.

Operators, made precise (the paper does not spell them out):

* ``↘P``: 2×2 area average (``avg_pool2d``) — exactly what an antialiased ×½ resize does;
* ``↘M``: 2×2 max-pool: a 64-px cell is missing when any of its four 128-px pixels is, so no
  dropped pixel leaks into CE64's input (its average is multiplied by 0);
* ``↘M̄ ⊙ ↘P`` is *dropped and filled with the mean colour*, as CE64 saw during its training
  (Pathak's ``train.lua``); a zero fill would be out of distribution;
* ``F₆₄(·)`` is CE64's inpainting (its prediction in the hole, the known 64-px cells copied), so
  that the bilinear ``↗`` blends the hole border with real context, not with CE64's re-painting of it;
* ``↗``: bilinear ×2 (``align_corners=False``).

**Masks** (§4.3): the central square, and random blocks (several smaller, possibly overlapping
squares covering up to 1/4 of the image, :func:`facefill.masks.random_block_masks`). We use one
code path for both: the full-image context encoder of :class:`MaskedContextEncoderTask` (decoder
→ whole image, D on the composite, L2 on the hole plus Pathak's ×10 overlap band of context
(:func:`band_weights`)). For the centre, the dropped square is Pathak's hole shrunk by the overlap
(56 px in 128, 28 px in 64), so the centre geometry is Pathak's. With ``overlap = 0`` the loss is
eq. (1) literally (checked in ``tests/test_cascade.py``).

**The control** (ours, issue 12): :class:`BlurPrefillContextEncoderTask` is the same CE128 on
``x = M̄⊙P + M⊙↗B(↘M̄⊙↘P)`` with ``B`` a non-learned blur fill (:func:`blur_fill`, a normalised
Gaussian convolution of the known pixels). Any pre-fill makes CE128's input depend less on the
mask, so NSD can only credit CE64's *learning* if the cascade also beats this control.
:func:`training_flops` counts one training step's FLOPs, so that the plain CE128 can be given
the cascade's total compute (CE64's training + CCE's).

**Sizes.** CE64 = Pathak's 64-px CE (encoder 64→32→16→8→4, 4000-d bottleneck); CE128 = the 128-px CE
(one more encoder layer). Both predict the whole image here (decoder depth follows the output).
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..adversarial import composite, discriminator_loss, eval_mode, generator_adversarial_loss
from ..errors import ConfigError
from .context_encoder import (
    ContextEncoder,
    ContextEncoderConfig,
    MaskedContextEncoderTask,
    band_weights,
    drop_region,
    masked_reconstruction_loss,
)

MASK_REGIMES = ("center", "random_blocks")


@dataclass
class CascadeConfig:
    image_size: int = 128  # CE128's input side; CE64 works at image_size // 2
    hole: int = 64  # centre regime: Pathak's hole side (the dropped square is hole - 2*overlap)
    overlap: int = 4  # px of context around the hole weighted overlap_weight in L_rec (CE64: overlap // 2)
    overlap_weight: float = 10.0  # Pathak's x10 on that band; overlap = 0 gives eq. (1) literally
    bottleneck: int = 4000  # D, the latent dimension of both encoders (Pathak: 4000)
    width: int = 64  # filters of the first layer of every net (Pathak: 64)
    lambda_adv: float = 0.001  # Pathak's weight of L_adv (lambda_rec = 1 - lambda_adv)
    lr_d: float = 2e-4  # discriminator learning rate (Adam)
    lr_g_factor: float = 10.0  # generator lr = lr_g_factor * lr_d (Pathak et al.)
    beta1: float = 0.5  # Adam beta1 (DCGAN)
    mask_kind: str = "center"  # "center" | "random_blocks" (paper 001, section 4.3)
    max_fraction: float = 0.25  # random blocks cover at most this fraction of the image (paper: 1/4)
    blur_sigma: float = 0.125  # the control's blur pre-fill: Gaussian σ as a fraction of the half-size side

    def __post_init__(self):
        if self.mask_kind not in MASK_REGIMES:
            raise ConfigError(f"mask_kind={self.mask_kind!r}: use one of {MASK_REGIMES} (paper 001, section 4.3).")
        if self.image_size % 32:
            raise ConfigError(f"image_size={self.image_size}: must be a multiple of 32 (CE64 works at half size).")
        if self.overlap % 2:
            raise ConfigError(f"overlap={self.overlap}: must be even (CE64 uses overlap // 2 at half size).")
        if not 0.0 < self.blur_sigma <= 1.0:
            raise ConfigError(f"blur_sigma={self.blur_sigma}: a fraction of the half-size side in (0, 1].")
        if not 0.0 < self.max_fraction <= 1.0:
            raise ConfigError(f"max_fraction={self.max_fraction}: must be in (0, 1].")
        self.ce(1), self.ce(2)  # validate both context-encoder configurations now

    def ce(self, factor: int) -> ContextEncoderConfig:
        """The full-image context encoder at ``image_size // factor`` (1: CE128, 2: CE64)."""
        return ContextEncoderConfig(
            image_size=self.image_size // factor, hole=self.hole // factor, overlap=self.overlap // factor,
            overlap_weight=self.overlap_weight, bottleneck=self.bottleneck, width=self.width,
            lambda_adv=self.lambda_adv, lr_d=self.lr_d, lr_g_factor=self.lr_g_factor, beta1=self.beta1, output="image",
        )

    def mask_kwargs(self, factor: int) -> dict:
        """Arguments of :func:`facefill.masks.make_masks` for this regime at ``image_size // factor``."""
        if self.mask_kind == "center":
            return {"hole": (self.hole - 2 * self.overlap) // factor}
        return {"max_fraction": self.max_fraction}


# --------------------------------------------------------------------------- the operators of eq. (1)

def downscale(images: torch.Tensor) -> torch.Tensor:
    """↘ on images: 2×2 area average."""
    return F.avg_pool2d(images, 2)


def downscale_mask(masks: torch.Tensor) -> torch.Tensor:
    """↘ on masks (1 = missing): a cell is missing when any of its four pixels is (2×2 max-pool)."""
    return F.max_pool2d(masks, 2)


def upscale(images: torch.Tensor) -> torch.Tensor:
    """↗: bilinear ×2."""
    return F.interpolate(images, scale_factor=2, mode="bilinear", align_corners=False)


def downscale_uint8(images: np.ndarray) -> np.ndarray:
    """↘ for uint8 (N, H, W, 3) arrays (CE64's training data: the same faces at half size)."""
    a = np.asarray(images)
    if a.dtype != np.uint8 or a.ndim != 4 or a.shape[-1] != 3 or a.shape[1] % 2 or a.shape[2] % 2:
        raise ConfigError(f"downscale_uint8 needs uint8 (N, H, W, 3) with even H, W; got {a.dtype} {a.shape}.")
    n, h, w, _ = a.shape
    mean = a.reshape(n, h // 2, 2, w // 2, 2, 3).mean(axis=(2, 4), dtype=np.float64)
    return np.clip(np.rint(mean), 0, 255).astype(np.uint8)


@torch.no_grad()
def ce64_fill(ce64: nn.Module, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """↗F₆₄(↘M̄ ⊙ ↘P): CE64's inpainting of the half-size image, upscaled to full size (float32)."""
    small, small_masks = downscale(images), downscale_mask(masks)
    pred = ce64(drop_region(small, small_masks)).float().clamp(-1, 1)
    return upscale(composite(small.float(), pred, small_masks))  # CE64's inpainting, context copied


def cascade_input(images: torch.Tensor, masks: torch.Tensor, prefill: torch.Tensor) -> torch.Tensor:
    """x = M̄ ⊙ P + M ⊙ prefill (prefill = ↗F₆₄(↘M̄ ⊙ ↘P))."""
    return composite(images, prefill, masks)


def equation_1(images: torch.Tensor, masks: torch.Tensor, output: torch.Tensor, overlap: int = 0,
               overlap_weight: float = 10.0) -> torch.Tensor:
    """L_rec of eq. (1) for CE128's output F(x), as a mean over the (weighted) hole pixels and channels:
    ‖M ⊙ (P − F(x))‖² / (3·ΣM) when ``overlap = 0``; Pathak's ×``overlap_weight`` context band otherwise."""
    return masked_reconstruction_loss(output, images, band_weights(masks, overlap, overlap_weight))


def equation_2(d_real_logits: torch.Tensor, d_fake_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. (2) as trained (Goodfellow's non-saturating form): D minimises −log D(P) − log(1 − D(fake)),
    the generator minimises −log D(fake) (:mod:`facefill.adversarial`). Returns (loss of D, L_adv of the generator)."""
    return discriminator_loss(d_real_logits, d_fake_logits)[0], generator_adversarial_loss(d_fake_logits)[0]


# --------------------------------------------------------------------------- tasks

def make_ce64_task(cfg: CascadeConfig, fused_adam: bool | None = None) -> MaskedContextEncoderTask:
    """CE64 trained the standard way (step one of §4.2), on half-size images with half-size masks."""
    return MaskedContextEncoderTask(cfg.ce(2), cfg.mask_kind, cfg.mask_kwargs(2), fused_adam)


def make_ce128_task(cfg: CascadeConfig, fused_adam: bool | None = None) -> MaskedContextEncoderTask:
    """The baseline: a plain CE128 with the same masks, data and budget as the cascade's CE128."""
    return MaskedContextEncoderTask(cfg.ce(1), cfg.mask_kind, cfg.mask_kwargs(1), fused_adam)


class CascadeContextEncoderTask(MaskedContextEncoderTask):
    """Step two of §4.2: CE128 trained on the cascade input, CE64 (trained) frozen.

    Only the encoder input changes: :meth:`drop` returns ``x = M̄⊙P + M⊙↗F₆₄(↘M̄⊙↘P)`` instead of
    the mean-filled image, so the inherited step computes eq. (1) (``g_rec``) and eq. (2)
    (``g_adv``, ``d_total``) through the cascade; :meth:`inpaint`, :meth:`sample` and the latent
    ``E(P, M)`` (:func:`encode`) go through the cascade too. CE64 is not in ``modules``: it is
    neither trained nor checkpointed with CE128 (its own checkpoint holds it); ``fit`` should get
    :func:`state_fingerprint` of its weights in ``fingerprint_extra``.
    """

    def __init__(self, cfg: CascadeConfig, ce64: ContextEncoder, fused_adam: bool | None = None):
        if ce64.cfg.image_size * 2 != cfg.image_size or ce64.cfg.output != "image":
            raise ConfigError(
                f"the cascade needs a full-image CE64 at {cfg.image_size // 2} px (make_ce64_task), "
                f"got image_size={ce64.cfg.image_size}, output={ce64.cfg.output!r}."
            )
        super().__init__(cfg.ce(1), cfg.mask_kind, cfg.mask_kwargs(1), fused_adam)
        self.cascade_cfg = cfg
        self.ce64 = ce64.eval().requires_grad_(False)

    def configure(self, device: torch.device) -> None:
        super().configure(device)
        first = next(self.generator.parameters())  # the first conv's weight: fit placed it in its memory format
        fmt = torch.channels_last if first.is_contiguous(memory_format=torch.channels_last) and not first.is_contiguous() else torch.contiguous_format
        self.ce64.to(device=device, memory_format=fmt).eval()

    def drop_only(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """The plain masked input (mean fill), for figures."""
        return super().drop(images, masks)

    def drop(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        self.ce64.eval()  # fit() calls .train() on `modules` only, but stay safe
        return cascade_input(images, masks, ce64_fill(self.ce64, images, masks))


def latent(generator: ContextEncoder, x: torch.Tensor, which: str = "code") -> torch.Tensor:
    """The encoder's D-dim latent of an (already dropped / pre-filled) input.

    ``"code"``: the bottleneck after BatchNorm + LeakyReLU — the tensor the decoder reads, i.e. the
    encoder's output E(P, M) (default); ``"linear"``: the channel-wise fully-connected layer's output
    before BatchNorm (an affine map of the features, closer to Gaussian: no rectification)."""
    enc = generator.encoder
    h = enc.bottleneck(torch.flatten(enc.features(x), 1))
    if which == "linear":
        return h
    if which == "code":
        return F.leaky_relu(enc.bn(h), 0.2)
    raise ConfigError(f"latent which={which!r}: use 'code' (post BatchNorm+LeakyReLU) or 'linear' (pre-activation).")


@torch.no_grad()
def encode(task: MaskedContextEncoderTask, images: torch.Tensor, masks: torch.Tensor, which: str = "code",
           autocast=None) -> torch.Tensor:
    """E(P, M) of a task (eval mode): CE128's encoder on its input — the mean-filled image for the
    plain CE, the CE64-pre-filled image for the cascade (CE128's encoder, whose input holds CE64's fill)."""
    with eval_mode(task.generator, autocast):
        return latent(task.generator, task.drop(images, masks), which).float()


def state_fingerprint(module: nn.Module) -> str:
    """Short hash of a module's weights and buffers (names, shapes, values)."""
    h = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        h.update(k.encode())
        h.update(str(tuple(v.shape)).encode())
        h.update(v.detach().to("cpu").contiguous().view(-1).view(torch.uint8).numpy().tobytes() if v.numel() else b"")
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- the control: a pre-fill that learns nothing

def blur_fill(images: torch.Tensor, masks: torch.Tensor, sigma: float) -> torch.Tensor:
    """A non-learned inpainting: each missing pixel gets the Gaussian-weighted mean of the *known*
    pixels around it (normalised convolution, ``Σ g·M̄·P / Σ g·M̄``, σ = ``sigma`` px); where no known
    pixel is within reach (weight < 1e-6) the image's mean known colour. Known pixels are kept."""
    if sigma <= 0:
        raise ConfigError(f"blur sigma={sigma}: must be > 0 px.")
    radius = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32, device=images.device)
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    g = g / g.sum()

    def smooth(x):  # separable Gaussian, zero outside the image (the weights renormalise)
        c = x.shape[1]
        x = F.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), padding=(0, radius), groups=c)
        return F.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), padding=(radius, 0), groups=c)

    x, m = images.float(), masks.float().expand(images.shape[0], 1, -1, -1)
    known = 1 - m
    num, den = smooth(x * known), smooth(known)
    mean = (x * known).sum((2, 3), keepdim=True) / known.sum((2, 3), keepdim=True).clamp_min(1)
    fill = torch.where(den > 1e-6, num / den.clamp_min(1e-6), mean)
    return composite(x, fill, m)


@torch.no_grad()
def blur_prefill(images: torch.Tensor, masks: torch.Tensor, sigma_fraction: float) -> torch.Tensor:
    """↗B(↘M̄ ⊙ ↘P): the cascade's pre-fill with CE64 replaced by :func:`blur_fill` at half size
    (σ = ``sigma_fraction`` × the half-size side), upscaled the same way."""
    small, small_masks = downscale(images), downscale_mask(masks)
    return upscale(blur_fill(small.float(), small_masks, sigma_fraction * small.shape[-1]))


class BlurPrefillContextEncoderTask(MaskedContextEncoderTask):
    """The NSD control: CE128 trained and evaluated on ``x = M̄⊙P + M⊙↗B(↘M̄⊙↘P)`` — the cascade
    input with a pre-fill that learns nothing. If NSD falls as much here as with CE64, a lower NSD
    says only that the hole was pre-filled, not that the fill is plausible."""

    def __init__(self, cfg: CascadeConfig, fused_adam: bool | None = None):
        super().__init__(cfg.ce(1), cfg.mask_kind, cfg.mask_kwargs(1), fused_adam)
        self.cascade_cfg = cfg

    def drop(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        return cascade_input(images, masks, blur_prefill(images, masks, self.cascade_cfg.blur_sigma))


# --------------------------------------------------------------------------- compute

def training_flops(task, images: torch.Tensor) -> float:
    """Floating-point operations of one ``training_step`` on ``images`` per image (PyTorch's
    FlopCounterMode: convolutions and matrix products, forward and backward; for the cascade this
    includes the frozen CE64's forward). Used to give the plain CE128 the cascade's total compute."""
    from torch.utils.flop_counter import FlopCounterMode

    from ..runtime import autocast_factory

    state = {k: {n: v.clone() for n, v in m.state_dict().items()} for k, m in task.modules.items()}
    opt = {k: o.state_dict() for k, o in task.optimizers.items()}
    rng = torch.get_rng_state()
    with FlopCounterMode(display=False) as counter:
        task.training_step(images, autocast_factory(images.device, "fp32"))
    for k, m in task.modules.items():  # counting must not train
        m.load_state_dict(state[k])
    for k, o in task.optimizers.items():
        o.load_state_dict(opt[k])
    torch.set_rng_state(rng)
    return counter.get_total_flops() / images.shape[0]


__all__ = [
    "MASK_REGIMES",
    "BlurPrefillContextEncoderTask",
    "blur_fill",
    "blur_prefill",
    "training_flops",
    "CascadeConfig",
    "CascadeContextEncoderTask",
    "cascade_input",
    "ce64_fill",
    "downscale",
    "downscale_mask",
    "downscale_uint8",
    "drop_region",
    "encode",
    "equation_1",
    "equation_2",
    "latent",
    "make_ce64_task",
    "make_ce128_task",
    "state_fingerprint",
    "upscale",
]
