"""SRGAN for faces (paper 004: Nair, Soni, Subramani, Yang, "Super resolution of occluded or unclear
faces using generative adversarial networks"), a re-implementation of Ledig et al., CVPR 2017,
"Photo-Realistic Single Image Super-Resolution Using a Generative Adversarial Network".

Paper 004 trains Ledig's SRGAN on CelebA (whole 178×218 images Lanczos-resampled to HR 64×64 and
LR 32×32, ×2), reports 14 M trainable parameters and ~60 h for 3000 iterations on a K80, and applies
the model frame by frame to surveillance video (``facefill.video``).

**Generator G (SRResNet).** With LR input I^LR (N, 3, h, w) and scale r = 2^k:

    h_0 = PReLU(conv9×9_{3→64}(I^LR))
    h_b = h_{b−1} + BN(conv3×3(PReLU(BN(conv3×3(h_{b−1})))))     b = 1..B  (B = 16 residual blocks)
    h   = h_0 + BN(conv3×3(h_B))                                   (global skip)
    h   ← PReLU(PixelShuffle_2(conv3×3_{64→256}(h)))              k = log2(r) times
    I^SR = tanh(conv9×9_{64→3}(h))                                 (our images are in [-1, 1])

PixelShuffle_2 rearranges (C·4, H, W) → (C, 2H, 2W): the "sub-pixel convolution" of Shi et al.,
which computes the upsampled image at low resolution instead of convolving inserted zeros.
Ledig's generator ends with a plain convolution on [-1, 1] targets; paper 004 lists tanh among its
activations and normalises to [-1, 1] "as tanh performs better in that range", so we use tanh.

**Discriminator D.** Eight 3×3 convolutions 64, 64, 128, 128, 256, 256, 512, 512 channels with
strides 1, 2, 1, 2, ... (the feature map halves four times: HR/16), BatchNorm on all but the first,
LeakyReLU(0.2); flatten; dense 1024; LeakyReLU(0.2); dense 1; sigmoid. We return the logit and put
the sigmoid into the loss (``binary_cross_entropy_with_logits``: the same function, stable in bf16).
For 64×64 HR the dense layer sees 4·4·512 = 8192 inputs (8.4 M weights, Ledig's 96 px: 6·6·512):
G (×2) + D at 64 px = 14.4 M parameters, the "14 million trainable parameters" of paper 004.

**Losses.** D minimises −log D(I^HR) − log(1 − D(G(I^LR))). G minimises the perceptual loss

    l^SR = l^SR_X + λ · l^SR_Gen,   l^SR_Gen = −log D(G(I^LR)),   λ = 10⁻³,

where the content loss l^SR_X is pixel MSE, VGG19 features or EfficientNet-Lite0 features
(``facefill.perceptual``). As Ledig, we first train the generator alone on pixel MSE (**SRResNet**,
:class:`SRResNetTask`, Adam β1 = 0.9 at ``lr``), then start SRGAN (:class:`SRGANTask`) from it with
fresh Adam optimisers at ``gan_lr`` (Ledig: 10⁻⁴ for the GAN phase; restarting Adam at the higher
pre-training rate doubled the training MSE within 10 steps). Every PReLU has one slope per channel
(``nn.PReLU(num_parameters=channels)``, as Ledig's implementation).

With ``lambda_adv = 0`` :class:`SRGANTask` is the *control* of the adversarial term: the same start,
content loss, optimiser and steps, but no discriminator (it would not change G), so
SRGAN − control is the effect of l_Gen alone. The logged ``adv_share`` = λ·l_Gen / l^SR is the part
of the generator loss the adversarial term makes up.

**Data.** :func:`make_lr` produces the LR image by Lanczos downscaling of the HR uint8 image (PIL), as
paper 004 resamples with LANCZOS; the baselines :func:`upscale` bicubic / Lanczos interpolate back.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from ..adversarial import AdversarialTask, Step, discriminator_loss, generator_loss, predict  # noqa: F401 (D's loss: re-exported)
from ..errors import ConfigError
from ..perceptual import ContentLoss, ContentLossConfig

SCALES = (2, 4, 8)
RESAMPLE = {"bicubic": Image.BICUBIC, "lanczos": Image.LANCZOS, "nearest": Image.NEAREST, "bilinear": Image.BILINEAR}


@dataclass
class SRGANConfig:
    scale: int = 2  # upscaling factor r: 2, 4 or 8 (log2(r) sub-pixel blocks)
    hr_size: int = 64  # HR side (the discriminator's input); LR side = hr_size / scale
    n_blocks: int = 16  # B residual blocks (Ledig: 16)
    width: int = 64  # generator feature channels (Ledig: 64)
    d_width: int = 64  # discriminator channels of the first layer (64 → 512)
    d_dense: int = 1024  # hidden units of the discriminator's dense layer
    lambda_adv: float = 1e-3  # weight of the adversarial loss in the perceptual loss
    lr: float = 1e-4  # Adam learning rate of the SRResNet pre-training (Ledig: 1e-4)
    gan_lr: float = 1e-4  # Adam learning rate of both nets in the GAN phase, fresh optimisers (Ledig: 1e-4)
    beta1: float = 0.9  # Adam β1 (Ledig: 0.9)

    def __post_init__(self):
        if self.scale not in SCALES:
            raise ConfigError(f"scale={self.scale}: choose one of {SCALES}.")
        if self.hr_size % 16 or self.hr_size % self.scale or self.hr_size < 16:
            raise ConfigError(f"hr_size={self.hr_size}: must be a multiple of 16 (the discriminator halves it 4 times) and of scale.")
        if self.n_blocks < 1 or self.width < 1 or self.d_width < 1 or self.d_dense < 1:
            raise ConfigError("n_blocks, width, d_width and d_dense must be >= 1.")
        if not 0.0 <= self.lambda_adv < 1.0:
            raise ConfigError(f"lambda_adv={self.lambda_adv}: must be in [0, 1).")
        if not (self.lr > 0 and self.gan_lr > 0):
            raise ConfigError(f"lr={self.lr}, gan_lr={self.gan_lr}: learning rates must be > 0.")

    @property
    def lr_size(self) -> int:
        return self.hr_size // self.scale


# --------------------------------------------------------------------------- networks

class ResidualBlock(nn.Module):
    """conv-BN-PReLU-conv-BN with an identity skip (Ledig Fig. 4)."""

    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, 1, 1), nn.BatchNorm2d(c), nn.PReLU(num_parameters=c), nn.Conv2d(c, c, 3, 1, 1), nn.BatchNorm2d(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class UpsampleBlock(nn.Module):
    """conv 64→256, PixelShuffle(2), PReLU: ×2 in each spatial dimension."""

    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c * 4, 3, 1, 1)
        self.shuffle = nn.PixelShuffle(2)
        self.act = nn.PReLU(num_parameters=c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.shuffle(self.conv(x)))


class Generator(nn.Module):
    """SRResNet: LR (N, 3, h, w) in [-1, 1] → SR (N, 3, r·h, r·w) in [-1, 1].

    ``iterations`` counts the optimisation steps this generator has received (SRResNet, then
    SRGAN); it is a buffer so that it is checkpointed and resumed with the weights.
    """

    def __init__(self, scale: int = 2, n_blocks: int = 16, width: int = 64):
        super().__init__()
        if scale not in SCALES:
            raise ConfigError(f"scale={scale}: choose one of {SCALES}.")
        self.scale = scale
        self.head = nn.Sequential(nn.Conv2d(3, width, 9, 1, 4), nn.PReLU(num_parameters=width))
        self.blocks = nn.Sequential(*[ResidualBlock(width) for _ in range(n_blocks)])
        self.post = nn.Sequential(nn.Conv2d(width, width, 3, 1, 1), nn.BatchNorm2d(width))
        self.upsample = nn.Sequential(*[UpsampleBlock(width) for _ in range(int(math.log2(scale)))])
        self.tail = nn.Conv2d(width, 3, 9, 1, 4)
        self.register_buffer("iterations", torch.zeros((), dtype=torch.long))

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        h0 = self.head(lr)
        h = h0 + self.post(self.blocks(h0))
        return torch.tanh(self.tail(self.upsample(h)))


class Discriminator(nn.Module):
    """Ledig's discriminator: 8 convs (64 → 512, stride 2 on every second), dense 1024, dense 1 → logit."""

    def __init__(self, hr_size: int = 64, width: int = 64, dense: int = 1024):
        super().__init__()
        if hr_size % 16:
            raise ConfigError(f"hr_size={hr_size}: the discriminator needs a multiple of 16.")
        chans = [width, width, width * 2, width * 2, width * 4, width * 4, width * 8, width * 8]
        layers: list[nn.Module] = []
        cin = 3
        for i, c in enumerate(chans):
            layers.append(nn.Conv2d(cin, c, 3, 1 + i % 2, 1))
            if i:
                layers.append(nn.BatchNorm2d(c))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            cin = c
        self.features = nn.Sequential(*layers)
        self.flat_dim = chans[-1] * (hr_size // 16) ** 2
        self.head = nn.Sequential(nn.Linear(self.flat_dim, dense), nn.LeakyReLU(0.2, inplace=True), nn.Linear(dense, 1))

    def forward(self, hr: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.features(hr), 1)).squeeze(1)


def n_params(module: nn.Module, trainable: bool = True) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable)


# --------------------------------------------------------------------------- data: LR images and baselines

def _check_uint8(images: np.ndarray, what: str) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ConfigError(f"{what} must be uint8 (N, H, W, 3) images, got {images.shape} {images.dtype}.")
    return images


def resize_uint8(images: np.ndarray, size: int, method: str = "lanczos") -> np.ndarray:
    """Resize uint8 (N, H, W, 3) images to (N, size, size, 3) with PIL (``lanczos``, ``bicubic``, ...)."""
    images = _check_uint8(images, "images")
    if method not in RESAMPLE:
        raise ConfigError(f"method={method!r}: choose one of {list(RESAMPLE)}.")
    out = np.empty((len(images), size, size, 3), np.uint8)
    for i, im in enumerate(images):
        out[i] = np.asarray(Image.fromarray(im).resize((size, size), RESAMPLE[method]))
    return out


def make_lr(hr: np.ndarray, scale: int) -> np.ndarray:
    """LR images: Lanczos downscaling of the HR uint8 images by ``scale`` (paper 004, §II-A)."""
    hr = _check_uint8(hr, "HR images")
    if hr.shape[1] != hr.shape[2] or hr.shape[1] % scale:
        raise ConfigError(f"HR images {hr.shape[1]}×{hr.shape[2]}: must be square and divisible by scale={scale}.")
    return resize_uint8(hr, hr.shape[1] // scale, "lanczos")


def upscale(lr: np.ndarray, scale: int, method: str = "bicubic") -> np.ndarray:
    """Interpolation baselines: LR uint8 → ×``scale`` with PIL bicubic / Lanczos."""
    lr = _check_uint8(lr, "LR images")
    return resize_uint8(lr, lr.shape[1] * scale, method)


# --------------------------------------------------------------------------- tasks for facefill.train.fit

class _Snapshots:
    """Writes G(fixed LR) at chosen generator iterations to ``dir/iter_XXXXXX.pt`` (survives resume)."""

    def __init__(self, lr_images: torch.Tensor | None, steps, directory):
        self.lr, self.steps = lr_images, {int(s) for s in (steps or ())}
        self.dir = Path(directory) if directory else None

    def maybe_save(self, gen: Generator, autocast) -> None:
        it = int(gen.iterations)
        if self.lr is None or self.dir is None or it not in self.steps:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        lr = self.lr.to(next(gen.parameters()).device)
        torch.save(predict(gen, lr, autocast).cpu(), self.dir / f"iter_{it:06d}.pt")


def load_snapshots(directory) -> dict[int, torch.Tensor]:
    """{generator iteration: SR images (N, 3, H, W) in [-1, 1]} written during training."""
    d = Path(directory)
    return {int(p.stem.split("_")[1]): torch.load(p, weights_only=True) for p in sorted(d.glob("iter_*.pt"))}


def _sr_rows(gen: Generator, batch, autocast) -> torch.Tensor:
    """Rows of (LR nearest-upscaled | SR | HR) for the progress grid."""
    hr, lr = batch
    up = F.interpolate(lr.float(), size=hr.shape[-2:], mode="nearest")
    return torch.cat([up, predict(gen, lr, autocast), hr.float()], 0)


class SRResNetTask:
    """Pre-training: the generator alone on pixel MSE (Ledig's SRResNet). Batches: (HR, LR)."""

    def __init__(self, cfg: SRGANConfig, snapshot_lr: torch.Tensor | None = None, snapshot_steps=(), snapshot_dir=None, fused_adam: bool | None = None):
        self.cfg = cfg
        self.generator = Generator(cfg.scale, cfg.n_blocks, cfg.width)
        self.modules = {"generator": self.generator}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self._fused = fused_adam
        self._snap = _Snapshots(snapshot_lr, snapshot_steps, snapshot_dir)

    def configure(self, device: torch.device) -> None:
        fused = self._fused if self._fused is not None else device.type in ("cpu", "cuda")
        self.optimizers = {"generator": torch.optim.Adam(self.generator.parameters(), lr=self.cfg.lr, betas=(self.cfg.beta1, 0.999), fused=fused)}

    def training_step(self, batch, autocast) -> dict:
        hr, lr = batch
        with autocast():
            sr = self.generator(lr)
        loss = F.mse_loss(sr.float(), hr.float())
        opt = self.optimizers["generator"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        self.generator.iterations += 1
        self._snap.maybe_save(self.generator, autocast)
        return {"g_mse": loss.detach()}

    def sample(self, batch, autocast=None) -> torch.Tensor:
        return _sr_rows(self.generator, batch, autocast)


class SRGANTask(AdversarialTask):
    """Adversarial training (:class:`facefill.adversarial.AdversarialTask`): D on real HR vs G(LR),
    then G on the perceptual loss l_X + λ·l_Gen (Ledig Eq. 3), the content network under autocast."""

    rec_key = "g_content"
    reconstruction_autocast = True

    def __init__(self, cfg: SRGANConfig, content: ContentLossConfig, init_generator: dict | None = None,
                 snapshot_lr: torch.Tensor | None = None, snapshot_steps=(), snapshot_dir=None, fused_adam: bool | None = None):
        generator = Generator(cfg.scale, cfg.n_blocks, cfg.width)
        if init_generator is not None:
            generator.load_state_dict(init_generator)
        super().__init__(cfg, generator, Discriminator(cfg.hr_size, cfg.d_width, cfg.d_dense), lr_g=cfg.gan_lr, lr_d=cfg.gan_lr,
                         betas=(cfg.beta1, 0.999), lambda_rec=1.0, lambda_adv=cfg.lambda_adv, fused_adam=fused_adam)
        if cfg.lambda_adv == 0:  # the control: D could not change G, so it is not trained (nor checkpointed)
            self.modules = {"generator": generator}
        self.content_cfg = content
        self.content = ContentLoss(content)  # frozen: not in modules (nothing to train or checkpoint)
        self._snap = _Snapshots(snapshot_lr, snapshot_steps, snapshot_dir)

    def configure(self, device: torch.device) -> None:
        self.content.to(device)
        super().configure(device)
        if "discriminator" not in self.modules:
            del self.optimizers["discriminator"]

    def prepare(self, batch) -> Step:
        hr, lr = batch
        return Step(real=hr, input=lr)

    def reconstruction_loss(self, output: torch.Tensor, step: Step) -> torch.Tensor:
        return self.content(output, step.real)

    def after_step(self, step: Step, output, d_real, d_fake, logs: dict) -> dict:
        share = self.lambda_adv * logs["g_adv"] / logs["g_total"].clamp_min(1e-12)
        with torch.no_grad():
            return {**logs, "adv_share": share, "g_mse": F.mse_loss(output.detach().float(), step.real.float())}

    def _content_step(self, batch, autocast) -> dict:
        """The λ_adv = 0 control: G on the content loss alone, with the same optimiser as SRGAN's G."""
        step = self.prepare(batch)
        with autocast():
            output = self.generator(step.input)
            rec = self.reconstruction_loss(output, step)
        self._update("generator", rec.float())
        with torch.no_grad():
            return {"g_content": rec.detach().float(), "g_total": rec.detach().float(), "adv_share": torch.zeros(()),
                    "g_mse": F.mse_loss(output.detach().float(), step.real.float())}

    def training_step(self, batch, autocast) -> dict:
        logs = self._content_step(batch, autocast) if "discriminator" not in self.modules else super().training_step(batch, autocast)
        self.generator.iterations += 1
        self._snap.maybe_save(self.generator, autocast)
        return logs

    def sample(self, batch, autocast=None) -> torch.Tensor:
        return _sr_rows(self.generator, batch, autocast)


def perceptual_loss(content: torch.Tensor, d_fake_logits: torch.Tensor, lambda_adv: float) -> tuple[torch.Tensor, dict]:
    """l^SR = l_X + λ·l_Gen with l_Gen = −log D(G(LR)) (Ledig Eq. 3 and 6)."""
    return generator_loss(d_fake_logits, content, 1.0, lambda_adv, rec_key="g_content")


# --------------------------------------------------------------------------- evaluation (SR protocol)

def rgb_to_y(images_uint8: np.ndarray) -> torch.Tensor:
    """ITU-R BT.601 luma of uint8 RGB images, (N, 1, H, W) float64 in [16, 235] (MATLAB ``rgb2ycbcr``)."""
    x = torch.from_numpy(_check_uint8(images_uint8, "images").astype(np.float64)).permute(0, 3, 1, 2) / 255.0
    w = torch.tensor([65.481, 128.553, 24.966], dtype=torch.float64).view(1, 3, 1, 1)
    return 16.0 + (x * w).sum(1, keepdim=True)


def rgb_to_cbcr(images_uint8: np.ndarray) -> torch.Tensor:
    """ITU-R BT.601 chroma (Cb, Cr) of uint8 RGB images, (N, 2, H, W) float64 in [16, 240] (MATLAB ``rgb2ycbcr``)."""
    x = torch.from_numpy(_check_uint8(images_uint8, "images").astype(np.float64)).permute(0, 3, 1, 2) / 255.0
    w = torch.tensor([[-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]], dtype=torch.float64)
    return 128.0 + torch.einsum("kc,nchw->nkhw", w, x)


def sr_metrics(pred_uint8: np.ndarray, hr_uint8: np.ndarray, border: int, visible: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per-image PSNR and SSIM on RGB and on the Y channel, ``border`` px cropped on every side, and the colour.

    Both images are uint8 (the SR output is quantised like any saved image); RGB metrics use the
    0–255 range, Y metrics the luma of :func:`rgb_to_y` with data range 255 (the usual SR protocol:
    border = scale, as in Ledig et al. and the SRCNN/VDSR evaluation code). Colour: ``psnr_cbcr`` on
    the two BT.601 chroma channels, and ``colour_shift``, the length of the image's mean RGB error
    (grey levels; a tint the Y metrics cannot see). ``visible`` (N, H, W bool, optional): also
    ``psnr_y_visible``, PSNR-Y on those pixels only (an occluded input's visible face).
    """
    from .. import metrics

    pred_uint8, hr_uint8 = _check_uint8(pred_uint8, "SR images"), _check_uint8(hr_uint8, "HR images")
    if pred_uint8.shape != hr_uint8.shape:
        raise ConfigError(f"SR {pred_uint8.shape} and HR {hr_uint8.shape} images must have the same shape.")
    b = slice(border, hr_uint8.shape[1] - border)
    rgb = lambda a: torch.from_numpy(a[:, b, b].astype(np.float64)).permute(0, 3, 1, 2)
    y_p, y_h = rgb_to_y(pred_uint8)[:, :, b, b], rgb_to_y(hr_uint8)[:, :, b, b]
    p, h = rgb(pred_uint8), rgb(hr_uint8)
    out = {
        "psnr_rgb": metrics.psnr(p, h, data_range=255.0),
        "ssim_rgb": metrics.ssim(p, h, data_range=255.0),
        "psnr_y": metrics.psnr(y_p, y_h, data_range=255.0),
        "ssim_y": metrics.ssim(y_p, y_h, data_range=255.0),
        "psnr_cbcr": metrics.psnr(rgb_to_cbcr(pred_uint8)[:, :, b, b], rgb_to_cbcr(hr_uint8)[:, :, b, b], data_range=255.0),
        "colour_shift": (p - h).mean((2, 3)).norm(dim=1).numpy(),
    }
    if visible is not None:
        if visible.shape != hr_uint8.shape[:3]:
            raise ConfigError(f"visible mask {visible.shape} must be (N, H, W) = {hr_uint8.shape[:3]}.")
        m = torch.from_numpy(np.ascontiguousarray(visible[:, b, b])).to(torch.float64)[:, None]
        out["psnr_y_visible"] = metrics.psnr(y_p, y_h, data_range=255.0, mask=m)
    return out
