"""The tiny training set-up shared by the train tests (imported as a plain module)."""
from facefill.train import TrainConfig


def train_config(**kw) -> TrainConfig:
    """6 steps of batch 4 on the CPU, a log row every step and a checkpoint every 2."""
    base = dict(steps=6, batch_size=4, precision="fp32", channels_last=False, device="cpu", seed=3,
                log_every=1, checkpoint_every=2, progress=False)
    return TrainConfig(**{**base, **kw})


def generator_weights(task) -> dict:
    return {k: v.detach().clone() for k, v in task.generator.state_dict().items()}
