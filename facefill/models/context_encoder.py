"""Context encoder (Pathak et al., CVPR 2016, "Context Encoders: Feature Learning by Inpainting").

Faithful to the reference implementation (pathak22/context-encoder, ``train.lua``), which is the
baseline of papers 000, 001 and 003 and the backbone of paper 001's cascade.

Architecture (``fineSize`` = 128, centre hole 64):

* **Encoder** ``E``: 4x4 stride-2 convolutions 3→64→64→128→256→512 (128→4 px), each followed by
  BatchNorm (not on the first) and LeakyReLU(0.2); then a 4x4 *valid* convolution 512·4·4 → 4000,
  the **bottleneck** z (BatchNorm + LeakyReLU after it): a *full* fully-connected layer over the
  4×4×512 map, as ``train.lua`` builds it — not the cheaper *channel-wise* FC the paper describes
  (each channel's 4×4 map connected only to itself, then a 1×1 convolution mixing channels).
  A 64 px input drops the first 64→64 layer (64→32→16→8→4).
* **Decoder** ``G``: a 4x4 up-convolution 4000 → 512·4·4, then 4x4 stride-2 up-convolutions
  512→256→128→64→3 with BatchNorm + ReLU (DCGAN generator style), tanh output: the 64x64 hole patch
  (32x32 for a 64 px input — the decoder's depth follows the hole size).
* **Discriminator** ``D``: a DCGAN discriminator on the *patch*: 4x4 stride-2 convolutions
  3→64→128→256→512 with LeakyReLU(0.2) and BatchNorm (none on the first), a 4x4 valid convolution
  to one logit.

Efficiency note: a 4x4 valid convolution on a 4x4 map *is* a fully-connected layer on the flattened
map, and a 4x4 up-convolution of a 1x1 map is a fully-connected layer reshaped to 4x4. We write both
as ``nn.Linear`` (identical outputs, checked in ``tests/test_context_encoder.py`` against the
convolutional form): on a CPU the 4000-d bottleneck as convolutions dominated the step; as Linear
layers with channels_last + bf16 it is several times faster (``python -m facefill.bench``).

Losses (``train.lua``): the generator minimises

    L_G = λ_rec · L_rec + λ_adv · L_adv,   λ_rec = 0.999, λ_adv = 0.001,

with ``L_rec`` the mean squared error on the hole patch, where the ``overlap`` = 4 px border of the
patch (which the encoder *does* see: the dropped input region is the hole shrunk by ``overlap``)
is weighted ×10, and ``L_adv = BCE(D(G(x)), 1)``. D minimises the usual
``BCE(D(real), 1) + BCE(D(fake), 0)``. Adam with β1 = 0.5; Pathak et al. use a learning rate ten
times higher for the generator than for D (D: 2e-4). The dropped region is pre-filled with the
mean colour (``train.lua``: 2·117/255−1, 2·104/255−1, 2·123/255−1).

Weights are initialised from N(0, 0.02) (BatchNorm γ from N(1, 0.02), β = 0) as in DCGAN.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .. import adversarial
from ..adversarial import InpaintingTask, Step, composite
from ..errors import ConfigError

#: Pathak's hole fill, train.lua's ImageNet mean (117, 104, 123)/255 mapped to [-1, 1].
PATHAK_MEAN_RGB = (2 * 117 / 255 - 1, 2 * 104 / 255 - 1, 2 * 123 / 255 - 1)


@dataclass
class ContextEncoderConfig:
    image_size: int = 128  # input side: 128 (hole 64) or 64 (hole 32)
    hole: int = 64  # side of the square centre hole = side of the predicted patch
    overlap: int = 4  # px of the patch border the encoder sees (train.lua overlapPred)
    overlap_weight: float = 10.0  # L2 weight of that border relative to the inside
    bottleneck: int = 4000  # nBottleneck, the latent dimension D
    width: int = 64  # nef = ngf = ndf, filters of the first layer
    lambda_adv: float = 0.001  # 1 - wtl2
    lr_d: float = 2e-4  # discriminator learning rate
    lr_g_factor: float = 10.0  # generator lr = lr_g_factor * lr_d (Pathak: 10x)
    beta1: float = 0.5
    output: str = "patch"  # "patch": centre hole only (Pathak's centre region); "image": full image, any mask

    def __post_init__(self):
        if self.output not in ("patch", "image"):
            raise ConfigError(f"output={self.output!r}: use 'patch' (centre hole) or 'image' (arbitrary masks).")
        if self.image_size not in (64, 128) and self.image_size % 16:
            raise ConfigError(f"image_size={self.image_size}: use 64 or 128 (or a multiple of 16).")
        if self.hole & (self.hole - 1) or not 16 <= self.hole <= self.image_size:
            raise ConfigError(f"hole={self.hole}: must be a power of two between 16 and image_size.")
        if not 0 <= 2 * self.overlap < self.hole:
            raise ConfigError(f"overlap={self.overlap}: must satisfy 0 <= 2*overlap < hole.")
        if not 0.0 <= self.lambda_adv < 1.0:
            raise ConfigError(f"lambda_adv={self.lambda_adv}: must be in [0, 1).")

    @property
    def lambda_rec(self) -> float:
        return 1.0 - self.lambda_adv

    @property
    def hole_box(self) -> tuple[int, int, int, int]:
        """(top, left, height, width) of the centred hole."""
        t = (self.image_size - self.hole) // 2
        return t, t, self.hole, self.hole


def init_dcgan_weights(module: nn.Module) -> None:
    """N(0, 0.02) for conv/linear weights, N(1, 0.02) for BatchNorm scales (Radford et al.)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def _down(cin: int, cout: int, bn: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 4, 2, 1, bias=not bn)]
    if bn:
        layers.append(nn.BatchNorm2d(cout))
    layers.append(nn.LeakyReLU(0.2, inplace=True))
    return layers


def _up(cin: int, cout: int) -> list[nn.Module]:
    return [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]


class Encoder(nn.Module):
    """x (N, 3, S, S) → z (N, D): strided convs down to 4x4x(8·width), then the FC bottleneck."""

    def __init__(self, image_size: int = 128, bottleneck: int = 4000, width: int = 64):
        super().__init__()
        n_down = int(math.log2(image_size // 4))  # 128 → 5 layers, 64 → 4 layers
        chans = [width] * (n_down - 3) + [width * 2, width * 4, width * 8]
        layers = _down(3, chans[0], bn=False)
        for cin, cout in zip(chans, chans[1:]):
            layers += _down(cin, cout)
        self.features = nn.Sequential(*layers)
        self.flat_dim = chans[-1] * 16
        # the 4x4 valid conv of train.lua, as Linear (identical maths, much faster on CPU)
        self.bottleneck = nn.Linear(self.flat_dim, bottleneck, bias=False)
        self.bn = nn.BatchNorm1d(bottleneck)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)
        return F.leaky_relu(self.bn(self.bottleneck(torch.flatten(h, 1))), 0.2)


class Decoder(nn.Module):
    """z (N, D) → patch (N, 3, hole, hole) in [-1, 1]."""

    def __init__(self, hole: int = 64, bottleneck: int = 4000, width: int = 64):
        super().__init__()
        n_up = int(math.log2(hole // 4))  # 64 → 4 up-convs, 32 → 3
        top = width * 2 ** (n_up - 1)
        self.top = top
        # 4x4 up-conv of the 1x1 code, as Linear + reshape
        self.project = nn.Linear(bottleneck, top * 16, bias=False)
        self.bn = nn.BatchNorm2d(top)
        chans = [top // 2**i for i in range(n_up)]
        layers: list[nn.Module] = []
        for cin, cout in zip(chans, chans[1:]):
            layers += _up(cin, cout)
        layers += [nn.ConvTranspose2d(chans[-1], 3, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.project(z).view(z.shape[0], self.top, 4, 4)
        return self.net(F.relu(self.bn(h)))


class ContextEncoder(nn.Module):
    """The generator: encoder + decoder. ``forward`` returns the hole patch (or the whole image when
    ``cfg.output == "image"``)."""

    def __init__(self, cfg: ContextEncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg.image_size, cfg.bottleneck, cfg.width)
        self.decoder = Decoder(cfg.image_size if cfg.output == "image" else cfg.hole, cfg.bottleneck, cfg.width)
        init_dcgan_weights(self)

    def forward(self, masked: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(masked))


class PatchDiscriminator(nn.Module):
    """DCGAN discriminator on a (N, 3, P, P) patch → one logit per image (sigmoid in the loss)."""

    def __init__(self, patch: int = 64, width: int = 64):
        super().__init__()
        n_down = int(math.log2(patch // 4))
        chans = [width * 2**i for i in range(n_down)]
        layers = _down(3, chans[0], bn=False)
        for cin, cout in zip(chans, chans[1:]):
            layers += _down(cin, cout)
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(chans[-1] * 16, 1)  # train.lua's final 4x4 valid conv
        init_dcgan_weights(self)

    def forward(self, patch: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.features(patch), 1)).squeeze(1)


# --------------------------------------------------------------------------- geometry and losses

def drop_centre(images: torch.Tensor, cfg: ContextEncoderConfig, fill=PATHAK_MEAN_RGB) -> torch.Tensor:
    """Input of the encoder: the hole *shrunk by ``overlap``* replaced by the mean colour."""
    t, l, h, w = cfg.hole_box
    o = cfg.overlap
    out = images.clone()
    fill_t = torch.as_tensor(fill, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    out[:, :, t + o : t + h - o, l + o : l + w - o] = fill_t
    return out


def crop_centre(images: torch.Tensor, cfg: ContextEncoderConfig) -> torch.Tensor:
    t, l, h, w = cfg.hole_box
    return images[:, :, t : t + h, l : l + w]


def paste_centre(images: torch.Tensor, patch: torch.Tensor, cfg: ContextEncoderConfig) -> torch.Tensor:
    """Full image with the predicted patch in the hole (known pixels untouched)."""
    t, l, h, w = cfg.hole_box
    out = images.clone()
    out[:, :, t : t + h, l : l + w] = patch.to(out.dtype)
    return out


def overlap_weights(cfg: ContextEncoderConfig, device=None) -> torch.Tensor:
    """(1, 1, hole, hole) L2 weights: ``overlap_weight`` on the border ring, 1 inside (train.lua wtl2Matrix / wtl2)."""
    w = torch.full((1, 1, cfg.hole, cfg.hole), cfg.overlap_weight, device=device)
    o = cfg.overlap
    w[:, :, o : cfg.hole - o, o : cfg.hole - o] = 1.0
    return w


def reconstruction_loss(patch: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted mean squared error over all pixels and channels (train.lua: MSE with cmul'd gradient)."""
    return (weights * (patch.float() - target.float()) ** 2).mean()


def generator_loss(patch, target, d_fake_logits, weights, lambda_adv: float) -> tuple[torch.Tensor, dict]:
    """Pathak's ``L_G = (1 − λ_adv)·L_rec + λ_adv·L_adv`` (:func:`facefill.adversarial.generator_loss`)."""
    return adversarial.generator_loss(d_fake_logits, reconstruction_loss(patch, target, weights), 1.0 - lambda_adv, lambda_adv)


# --------------------------------------------------------------------------- training task

class CentreHole:
    """Hooks of an :class:`~facefill.adversarial.InpaintingTask` whose generator predicts the centre
    hole patch (``cfg.hole_box``; the encoder sees the hole shrunk by ``cfg.overlap``) and whose
    discriminator judges that patch. ``masks`` may be ``None`` (the centre hole) or masks whose
    holes lie inside the hole box (only those pixels are replaced). The encoder never sees a pixel
    of ``masks``: a mask wider than the dropped square (the whole hole, with ``overlap`` > 0) is
    dropped as well (tests/test_no_peek.py)."""

    mask_kinds = ("centre",)  # the masks it is trained on (facefill.api: `facefill inpaint` refuses others)

    def prepare(self, images: torch.Tensor) -> Step:
        return Step(real=crop_centre(images, self.cfg), images=images)

    def drop(self, images: torch.Tensor, masks=None) -> torch.Tensor:
        dropped = drop_centre(images, self.cfg)
        return dropped if masks is None else drop_region(dropped, masks)

    def fake_view(self, output: torch.Tensor, step: Step) -> torch.Tensor:
        return output

    def default_masks(self, images: torch.Tensor) -> None:
        return None

    def paste(self, images: torch.Tensor, prediction: torch.Tensor, masks=None) -> torch.Tensor:
        filled = paste_centre(images, prediction, self.cfg)
        if masks is None:
            return filled
        t, l, h, w = self.cfg.hole_box
        if masks.sum() != masks[..., t : t + h, l : l + w].sum():
            raise ConfigError(f"{type(self).__name__} fills its centre {h}×{w} hole only: these masks have holes "
                              "outside it (use a full-image task, e.g. MaskedContextEncoderTask).")
        return composite(images, filled, masks)


class ContextEncoderTask(CentreHole, InpaintingTask):
    """The context encoder on the centre hole, trained by the D-then-G step of
    :class:`facefill.adversarial.AdversarialTask`: D on (real patch, detached fake patch), then G on
    λ_rec·L_rec + λ_adv·L_adv with the overlap-weighted L2 of :func:`reconstruction_loss`."""

    def __init__(self, cfg: ContextEncoderConfig, fused_adam: bool | None = None):
        super().__init__(cfg, ContextEncoder(cfg), PatchDiscriminator(cfg.hole, cfg.width), lr_g=cfg.lr_d * cfg.lr_g_factor,
                         lr_d=cfg.lr_d, betas=(cfg.beta1, 0.999), lambda_rec=cfg.lambda_rec, lambda_adv=cfg.lambda_adv,
                         fused_adam=fused_adam)

    def configure(self, device: torch.device) -> None:
        super().configure(device)
        self._weights = overlap_weights(self.cfg, device)

    def reconstruction_loss(self, output: torch.Tensor, step: Step) -> torch.Tensor:
        return reconstruction_loss(output, step.real, self._weights)


# --------------------------------------------------------------------------- arbitrary masks

def band_weights(masks: torch.Tensor, overlap: int, overlap_weight: float) -> torch.Tensor:
    """L2 weights for full-image prediction: 1 in the hole, ``overlap_weight`` on the ``overlap``-px
    band of known pixels around it, 0 elsewhere — the centre geometry (hole + weighted border)
    generalised to any mask. ``masks``: (N, 1, H, W), 1 = missing."""
    if overlap > 0:
        band = F.max_pool2d(masks, 2 * overlap + 1, stride=1, padding=overlap) - masks
    else:
        band = torch.zeros_like(masks)
    return masks + overlap_weight * band


def drop_region(images: torch.Tensor, masks: torch.Tensor, fill=PATHAK_MEAN_RGB) -> torch.Tensor:
    """Input of the encoder for any mask: the missing pixels (``masks`` = 1) set to the mean colour."""
    fill_t = torch.as_tensor(fill, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return images * (1 - masks) + fill_t * masks


def masked_reconstruction_loss(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Σ w·(pred − target)² / (3 · #pixels with w > 0): the mean over the weighted region, as the
    centre variant averages over its patch."""
    err = weights * (pred.float() - target.float()) ** 2
    return err.sum() / (pred.shape[1] * (weights > 0).sum().clamp_min(1))


class MaskedContextEncoderTask(ContextEncoderTask):
    """The context encoder for arbitrary masks (random regions, blocks, halves, strokes).

    Pathak et al. also train with random-region masks; then the decoder predicts the whole image,
    the hole is filled with the mean colour, D judges the composited image, and the L2 loss covers
    the hole plus a weighted band of context (:func:`band_weights`). Masks are drawn per step by
    :func:`facefill.masks.make_masks` with a seed taken from torch's (checkpointed) RNG, so a
    resumed run draws the same masks; ``inpaint(images)`` and the progress grid use seed 0.
    """

    def __init__(self, cfg: ContextEncoderConfig, mask_kind: str, mask_kwargs: dict | None = None, fused_adam: bool | None = None):
        if cfg.output != "image":
            raise ConfigError("MaskedContextEncoderTask needs ContextEncoderConfig(output='image').")
        super().__init__(cfg, fused_adam)  # (its patch discriminator is drawn and replaced: same weights per seed as ever)
        self.discriminator = PatchDiscriminator(cfg.image_size, cfg.width)
        self.modules["discriminator"] = self.discriminator
        self.mask_kind, self.mask_kwargs = mask_kind, dict(mask_kwargs or {})

    @property
    def mask_kinds(self) -> tuple[str, ...]:
        return (self.mask_kind,)

    def masks(self, n: int, seed: int, device=None) -> torch.Tensor:
        from ..masks import make_masks

        return make_masks(self.mask_kind, self.cfg.image_size, n, seed=seed, **self.mask_kwargs).to(device)

    def default_masks(self, images: torch.Tensor) -> torch.Tensor:
        return self.masks(images.shape[0], 0, images.device)

    def drop(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        return drop_region(images, masks)

    def prepare(self, images: torch.Tensor) -> Step:
        masks = self.masks(images.shape[0], int(torch.randint(0, 2**31 - 1, (1,))), images.device)
        return Step(real=images, images=images, masks=masks)

    fake_view, paste = InpaintingTask.fake_view, InpaintingTask.paste  # the composite, not the centre patch

    def reconstruction_loss(self, output: torch.Tensor, step: Step) -> torch.Tensor:
        weights = band_weights(step.masks, self.cfg.overlap, self.cfg.overlap_weight)
        return masked_reconstruction_loss(output, step.images, weights)


# --------------------------------------------------------------------------- the literal train.lua form

class _ConvBottleneckGenerator(nn.Module):
    """train.lua's layers literally: 4x4 valid conv bottleneck and 4x4 up-conv from the 1x1 code."""

    def __init__(self, gen: ContextEncoder):
        super().__init__()
        enc, dec = gen.encoder, gen.decoder
        d, flat = enc.bottleneck.weight.shape
        c = flat // 16
        self.features, self.bn_z, self.bn_top, self.net = enc.features, enc.bn, dec.bn, dec.net
        self.conv_z = nn.Conv2d(c, d, 4, bias=False)
        self.upconv = nn.ConvTranspose2d(d, dec.top, 4, bias=False)
        with torch.no_grad():
            self.conv_z.weight.copy_(enc.bottleneck.weight.view(d, c, 4, 4))
            self.upconv.weight.copy_(dec.project.weight.t().reshape(d, dec.top, 4, 4))

    def forward(self, x):
        z = F.leaky_relu(self.bn_z(self.conv_z(self.features(x)).flatten(1)), 0.2)
        return self.net(F.relu(self.bn_top(self.upconv(z[:, :, None, None]))))


def convolutional_reference(gen: ContextEncoder) -> nn.Module:
    """The same generator (shared weights) with the bottleneck written as convolutions, as in train.lua.

    Used by the tests (identical outputs) and by the benchmark's "plain" baseline.
    """
    return _ConvBottleneckGenerator(gen)
