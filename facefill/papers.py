"""The one registry of the study: which paper is which stage, notebook, study module and trained tasks.

Everything that lists the papers is derived from :data:`PAPERS`: the pipeline's stages
(:data:`NOTEBOOKS`, re-exported as ``facefill.pipeline.NOTEBOOKS``), the task classes a checkpoint may name
(``facefill.api.KNOWN_TASKS``), the tests' parametrised stage lists; ``facefill.estimate.STAGES`` (the workloads of ``pipeline estimate``)
is checked against it by a test. Adding a paper: ``docs/DEVELOPING.md``, "Adding a paper".
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Paper:
    section: str  # params.yaml section = DVC stage = `python -m facefill.pipeline run SECTION`
    notebook: str | None  # notebooks/<notebook>.py, reports/<notebook>/, models/<notebook>/; None: a stage without one
    study: str  # facefill/experiments/<study>.py beside <study>.yaml (published numbers, claims, deviation log)
    tasks: tuple[str, ...]  # "module:Class" of the tasks it trains, under facefill.models
    title: str


PAPERS: tuple[Paper, ...] = (
    Paper("context_encoder", "00_context_encoder", "pathak2016",
          ("context_encoder:ContextEncoderTask", "context_encoder:MaskedContextEncoderTask"),
          "Pathak et al., Context Encoders (the baseline of papers 000, 001, 003)"),
    Paper("multiscale", "01_multiscale_context_encoder", "multiscale2020", ("multiscale:MultiScaleTask",),
          "000: a multi-scale context encoder"),
    Paper("cascade", "02_cascade_context_encoder", "cascade2018",
          ("cascade:CascadeContextEncoderTask", "cascade:BlurPrefillContextEncoderTask"), "001: cascade context encoder, NSD"),
    Paper("masked_face", "03_masked_face_inpainting", "masked_face2021", ("elu_context_encoder:EluContextEncoderTask",),
          "002: ELU / max-pool CE for masked faces"),
    Paper("dcgan", None, "dcgan_faces", ("dcgan:DCGANTask",), "003's generator: a DCGAN on 64-px faces"),
    Paper("semantic", "04_semantic_inpainting_landmarks", "semantic_landmarks", (),
          "003: semantic inpainting with a landmark loss"),
    Paper("srgan", "05_srgan_faces", "srgan_faces2020", ("srgan:SRResNetTask", "srgan:SRGANTask"), "004: SRGAN on faces"),
)

#: section → notebook, for the stages that run a notebook (in reading order)
NOTEBOOKS: dict[str, str] = {p.section: p.notebook for p in PAPERS if p.notebook}


def known_tasks() -> dict[str, str]:
    """Task class name → its module (``facefill.models.…``), for checkpoints whose meta names no module."""
    return {t.split(":")[1]: f"facefill.models.{t.split(':')[0]}" for p in PAPERS for t in p.tasks}
