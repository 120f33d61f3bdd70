"""The paper registry (facefill.papers) is the one list of papers: everything else agrees with it."""
import importlib
from pathlib import Path

import yaml

from facefill import api, bench, papers, pipeline
from facefill.config import load_params

ROOT = Path(__file__).resolve().parents[1]


def test_every_list_of_papers_is_the_registry():
    sections = [p.section for p in papers.PAPERS]
    assert len(set(sections)) == len(sections)
    assert list(load_params(ROOT / "params.yaml")["base"]) == sections, "params.yaml base: one section per paper, in order"
    assert set(bench.STAGES) == set(sections), "bench.STAGES: the workloads of every paper's stage"
    assert pipeline.NOTEBOOKS == {p.section: p.notebook for p in papers.PAPERS if p.notebook}
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert set(sections) <= set(stages), "dvc.yaml: one stage per paper section"


def test_every_entry_points_at_real_files_and_classes():
    for p in papers.PAPERS:
        assert (ROOT / "facefill" / "experiments" / f"{p.study}.py").is_file(), p
        if p.notebook:  # a paper's stage: its YAML holds the published numbers, claims and deviation log
            assert (ROOT / "facefill" / "experiments" / f"{p.study}.yaml").is_file(), p
            assert (ROOT / "notebooks" / f"{p.notebook}.py").is_file(), p
        for t in p.tasks:
            module, cls = t.split(":")
            assert hasattr(importlib.import_module(f"facefill.models.{module}"), cls), t
    assert api.KNOWN_TASKS == papers.known_tasks()


def test_every_study_records_its_claims_under_its_own_paper():
    """A study class that reuses another's set-up (the cascade's is the CE study's) still names its own
    YAML: its KEY is the study module's, so its claims are recorded, scored and checked under its paper."""
    import importlib
    import inspect

    from facefill.experiments.study import Study

    for paper in papers.PAPERS:
        module = importlib.import_module(f"facefill.experiments.{paper.study}")
        studies = [c for _, c in inspect.getmembers(module, inspect.isclass)
                   if issubclass(c, Study) and c is not Study and c.__module__ == module.__name__]
        for cls in studies:
            assert cls.KEY == paper.study, f"{cls.__name__}.KEY is {cls.KEY!r}, not its paper {paper.study!r}"
