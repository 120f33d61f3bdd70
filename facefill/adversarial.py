"""The adversarial game, written once: the GAN losses and the discriminator-then-generator step that
every paper of this study trains with (context encoders, the ELU CE, DCGAN, SRGAN).

**Players.** A generator ``G`` maps an input ``y`` (a masked face, a latent code ``z``, a low-resolution
image) to an image; a discriminator ``D`` maps an image to one *logit* ``ℓ``, and ``D(x) = σ(ℓ(x))`` is
the probability it gives to "``x`` is real". We keep the sigmoid inside the loss:
``binary_cross_entropy_with_logits`` computes ``−log σ(ℓ) = softplus(−ℓ)`` and ``−log(1 − σ(ℓ)) =
softplus(ℓ)`` without forming ``σ(ℓ)``, which is what makes it stable in bf16 and for confident ``D``.

**Discriminator loss** (Goodfellow et al., 2014, the binary cross-entropy of real → 1, fake → 0)::

    L_D = −E_x[log D(x)] − E_y[log(1 − D(G(y)))]

logged as ``d_real`` (the first term), ``d_fake`` (the second) and ``d_total``.

**Generator loss.** Minimising ``E[log(1 − D(G(y)))]`` as the minimax game states saturates early in
training: ``D`` rejects the first fakes with confidence, ``σ(ℓ) ≈ 0``, and the gradient vanishes.
Goodfellow et al. therefore let ``G`` maximise ``log D(G(y))`` instead — the *non-saturating* loss::

    L_G^adv = −E_y[log D(G(y))]                                                (``g_adv``)

A conditional generator (an inpainting or super-resolution network) also has to agree with the
ground truth; its loss mixes a reconstruction term in (Pathak et al.: λ_rec = 0.999, λ_adv = 0.001)::

    L_G = λ_rec · L_rec + λ_adv · L_G^adv                        (``g_rec``, ``g_total``)

All losses are computed in float32, whatever the autocast dtype of the networks' outputs.

**One training step** (Goodfellow et al.'s Algorithm 1 with k = 1 discriminator update):

1. ``fake = G(y)``; update ``D`` on ``L_D`` with the real images and the *detached* fake (``G``
   receives no gradient from this update);
2. update ``G`` on ``L_G`` against the *updated* ``D``.

:class:`AdversarialTask` implements this step once for :func:`facefill.train.fit`; a paper's task
says only what differs — what ``G`` sees, what ``D`` sees as real and as fake, and ``L_rec``.
:class:`InpaintingTask` adds what every hole-filling task shares: :meth:`~InpaintingTask.inpaint`
(``images, masks=None, autocast=None`` everywhere), :func:`composite` (keep the known pixels) and
the progress-grid rows. :func:`predict` runs any generator in eval mode.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConfigError

# --------------------------------------------------------------------------- losses


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    """Mean binary cross-entropy of ``σ(logits)`` against a constant label, in float32."""
    logits = logits.float()
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """``L_D = −E[log D(x)] − E[log(1 − D(G(y)))]`` from D's logits on real and fake images.

    Returns ``(L_D, {"d_real", "d_fake", "d_total"})``, float32."""
    real, fake = _bce(real_logits, 1.0), _bce(fake_logits, 0.0)
    total = real + fake
    return total, {"d_real": real.detach(), "d_fake": fake.detach(), "d_total": total.detach()}


def generator_adversarial_loss(fake_logits: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """The non-saturating ``L_G^adv = −E[log D(G(y))]`` from D's logits on the fakes: ``(loss, {"g_adv"})``."""
    adv = _bce(fake_logits, 1.0)
    return adv, {"g_adv": adv.detach()}


def generator_loss(fake_logits: torch.Tensor, rec: torch.Tensor | None = None, lambda_rec: float = 1.0,
                   lambda_adv: float = 1.0, rec_key: str = "g_rec") -> tuple[torch.Tensor, dict]:
    """``L_G = λ_rec·L_rec + λ_adv·L_G^adv``; with ``rec=None`` (an unconditional GAN) ``L_G = L_G^adv``.

    Returns ``(L_G, {rec_key, "g_adv", "g_total"})`` (only ``{"g_adv"}`` without ``rec``), float32."""
    adv, logs = generator_adversarial_loss(fake_logits)
    if rec is None:
        return adv, logs
    rec = rec.float()
    total = lambda_rec * rec + lambda_adv * adv
    return total, {rec_key: rec.detach(), "g_adv": adv.detach(), "g_total": total.detach()}


# --------------------------------------------------------------------------- helpers

def composite(images: torch.Tensor, prediction: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """``x̂ = (1 − M) ⊙ x + M ⊙ prediction``: the known pixels of ``images`` kept exactly, the missing
    ones (``masks`` (N|1, 1, H, W), 1 = missing) taken from ``prediction``; in ``images``' dtype."""
    m = masks.to(device=images.device, dtype=images.dtype)
    return images * (1 - m) + prediction.to(images.dtype) * m


@contextlib.contextmanager
def eval_mode(module: nn.Module, autocast=None):
    """Run ``module`` in eval mode (BatchNorm running statistics), without gradients, under
    ``autocast`` (a zero-argument context factory; ``None``: as is); its training flag is restored."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad(), (autocast or contextlib.nullcontext)():
            yield module
    finally:
        module.train(was_training)


def predict(generator: nn.Module, inputs: torch.Tensor, autocast=None) -> torch.Tensor:
    """``G(inputs)`` in eval mode (see :func:`eval_mode`), float32 clamped to the image range [-1, 1]."""
    with eval_mode(generator, autocast):
        out = generator(inputs)
    return out.float().clamp(-1, 1)


@dataclass
class Step:
    """The tensors of one training step, made by :meth:`AdversarialTask.prepare`."""

    real: torch.Tensor  # what D must call real (the image, the hole patch, the HR image)
    input: torch.Tensor | None = None  # G's input when it needs no autocast (z, the LR image)
    images: torch.Tensor | None = None  # inpainting: the whole images
    masks: torch.Tensor | None = None  # inpainting: 1 = missing


# --------------------------------------------------------------------------- the training step

class AdversarialTask:
    """A generator and a discriminator trained by the D-then-G step, for :func:`facefill.train.fit`.

    Owns ``modules``, the optimisers (Adam with ``betas`` for both, fused on CPU/CUDA unless
    ``fused_adam`` says otherwise) and :meth:`training_step`. A subclass overrides the hooks:

    * :meth:`prepare` ``(batch) -> Step`` — the step's tensors, outside autocast (random draws here);
    * :meth:`generator_input` ``(step)`` — what ``G`` sees (runs under autocast);
    * :meth:`fake_view` ``(output, step)`` — what ``D`` judges of ``G``'s output (default: the output);
    * :meth:`reconstruction_loss` ``(output, step)`` — ``L_rec``, or ``None`` for a plain GAN;
    * :meth:`after_step` ``(step, output, d_real, d_fake, logs) -> logs`` — counters, extra logs;
    * :meth:`optimizer` ``(params, lr, fused)`` — another optimiser than Adam.

    ``L_rec`` is computed in float32 outside autocast unless ``reconstruction_autocast`` is set (a
    perceptual loss whose network should run in the low precision).
    """

    rec_key = "g_rec"  # the log key of L_rec
    reconstruction_autocast = False

    def __init__(self, cfg, generator: nn.Module, discriminator: nn.Module, *, lr_g: float, lr_d: float,
                 betas: tuple[float, float], lambda_rec: float = 1.0, lambda_adv: float = 1.0,
                 fused_adam: bool | None = None):
        self.cfg = cfg
        self.generator, self.discriminator = generator, discriminator
        self.modules = {"generator": generator, "discriminator": discriminator}
        self.lr_g, self.lr_d, self.betas = lr_g, lr_d, betas
        self.lambda_rec, self.lambda_adv = lambda_rec, lambda_adv
        self._fused = fused_adam
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    def optimizer(self, params, lr: float, fused: bool) -> torch.optim.Optimizer:
        return torch.optim.Adam(params, lr=lr, betas=self.betas, fused=fused)

    def configure(self, device: torch.device) -> None:
        """Called by ``fit`` once the modules are on ``device``: build the optimisers there."""
        fused = self._fused if self._fused is not None else device.type in ("cpu", "cuda")
        self.optimizers = {"generator": self.optimizer(self.generator.parameters(), self.lr_g, fused),
                           "discriminator": self.optimizer(self.discriminator.parameters(), self.lr_d, fused)}

    # hooks
    def prepare(self, batch) -> Step:
        raise NotImplementedError

    def generator_input(self, step: Step) -> torch.Tensor:
        return step.input

    def fake_view(self, output: torch.Tensor, step: Step) -> torch.Tensor:
        return output

    def reconstruction_loss(self, output: torch.Tensor, step: Step) -> torch.Tensor | None:
        return None

    def after_step(self, step: Step, output, d_real, d_fake, logs: dict) -> dict:
        return logs

    def _update(self, name: str, loss: torch.Tensor) -> None:
        opt = self.optimizers[name]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def training_step(self, batch, autocast) -> dict[str, torch.Tensor]:
        """D on (real, detached fake), then G on λ_rec·L_rec + λ_adv·L_G^adv against the updated D."""
        step = self.prepare(batch)
        with autocast():
            output = self.generator(self.generator_input(step))
            fake = self.fake_view(output, step)
            d_real = self.discriminator(step.real)
            d_fake = self.discriminator(fake.detach())
        loss_d, logs_d = discriminator_loss(d_real, d_fake)
        self._update("discriminator", loss_d)

        with autocast():
            d_fake_g = self.discriminator(fake)
        with autocast() if self.reconstruction_autocast else contextlib.nullcontext():
            rec = self.reconstruction_loss(output, step)
        loss_g, logs_g = generator_loss(d_fake_g, rec, self.lambda_rec, self.lambda_adv, self.rec_key)
        self._update("generator", loss_g)
        return self.after_step(step, output, d_real, d_fake, {**logs_d, **logs_g})

    def predict(self, inputs: torch.Tensor, autocast=None) -> torch.Tensor:
        """The generator's output for ``inputs`` in eval mode (:func:`predict`)."""
        return predict(self.generator, inputs, autocast)


class InpaintingTask(AdversarialTask):
    """An adversarial task that fills holes: ``G`` sees ``drop(images, masks)``, ``D`` judges the
    composite (known pixels kept), and :meth:`inpaint` fills the holes of any images.

    Hooks on top of :class:`AdversarialTask`'s: :meth:`drop` (the generator input; required),
    :meth:`paste` (a prediction into the images; default :func:`composite`), :meth:`default_masks`
    (the masks of ``inpaint(images)`` and of the progress grid) and :meth:`split` (a batch into
    ``(images, masks)``; default: the batch and its default masks).
    """

    def drop(self, images: torch.Tensor, masks: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def paste(self, images: torch.Tensor, prediction: torch.Tensor, masks: torch.Tensor | None) -> torch.Tensor:
        return composite(images, prediction, masks)

    def default_masks(self, images: torch.Tensor) -> torch.Tensor | None:
        raise ConfigError(f"{type(self).__name__}.inpaint needs masks (N, 1, H, W), 1 = missing.")

    def split(self, batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        return batch, self.default_masks(batch)

    def prepare(self, batch) -> Step:
        images, masks = self.split(batch)
        return Step(real=images, images=images, masks=masks)

    def generator_input(self, step: Step) -> torch.Tensor:
        return self.drop(step.images, step.masks)

    def fake_view(self, output: torch.Tensor, step: Step) -> torch.Tensor:
        return composite(step.images, output, step.masks)

    @torch.no_grad()
    def inpaint(self, images: torch.Tensor, masks: torch.Tensor | None = None, autocast=None) -> torch.Tensor:
        """``images`` with the holes of ``masks`` (1 = missing; ``None``: :meth:`default_masks`) filled
        by the generator in eval mode; the known pixels are returned untouched."""
        if masks is None:
            masks = self.default_masks(images)
        elif not isinstance(masks, torch.Tensor):
            raise ConfigError(f"inpaint(images, masks=None, autocast=None): masks must be a tensor, got {type(masks).__name__} "
                              "(pass autocast by keyword).")
        with eval_mode(self.generator, autocast):
            prediction = self.generator(self.drop(images, masks))
        return self.paste(images, prediction.float().clamp(-1, 1), masks)

    def sample(self, batch, autocast=None) -> torch.Tensor:
        """Rows of (generator input | completion | ground truth) for the progress grid."""
        images, masks = self.split(batch)
        return torch.cat([self.drop(images, masks), self.inpaint(images, masks, autocast), images], 0)


__all__ = [
    "AdversarialTask",
    "InpaintingTask",
    "Step",
    "composite",
    "discriminator_loss",
    "eval_mode",
    "generator_adversarial_loss",
    "generator_loss",
    "predict",
]
