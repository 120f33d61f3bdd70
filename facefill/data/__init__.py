"""Face datasets: find the archives, split them, decode and cache the images.

Every model and notebook gets its faces from here, so every paper sees the same
pixels for the same (dataset, crop, size, split).

Datasets (``DATASETS``)
-----------------------
``lfw``        LFW deep-funneled, ``lfw-deepfunneled.tgz`` (13,233 JPEGs, 250x250).
``celeba``     CelebA aligned, ``img_align_celeba.zip`` (official, 178x218) or our
               half-resolution copy ``img_align_celeba_half.zip`` (89x109).
``celeba-hq``  CelebA-HQ, ``celeba-hq-256.zip`` or any ``celeba_hq*`` / ``CelebA-HQ*``
               archive or folder of JPG/PNG at any size.
``images:<path>``  Any folder / .zip / .tar(.gz) of images (generic source).

Archives are read member by member and never extracted; an already extracted
folder with the same name works too (member names are then the paths relative to
the folder's parent, so a folder and its archive give the same names and splits).

Where the data lives (``resolve_data_dir``): env ``FACEFILL_DATA_DIR`` beats the
``data_dir`` argument (``params.yaml`` ``data.dir``) beats ``data/raw``. Relative
``data_dir`` / ``processed_dir`` arguments are taken from the repo root (where DVC
runs stages); a relative env var from the cwd. On the command line an explicit
``--data-dir`` (relative to the cwd) beats the env var, with a note when both are set. Nothing is downloaded unless
``FACEFILL_ALLOW_DOWNLOAD=1`` (torchvision's CelebA / LFWPeople downloaders).
A ``FACEFILL_DATA_DIR`` that does not exist, or a data dir that is an archive file
rather than the folder holding it, raises ``DataNotFoundError`` saying what to set.

Conventions
-----------
* Images are uint8 arrays (N, H, W, 3) RGB in numpy; ``to_tensor`` gives float32
  NCHW in [-1, 1] (x / 127.5 - 1) and ``to_uint8`` inverts it (clamp, round).
* Member names are sorted as plain strings; indices always refer to that list.
* Splits ``train`` / ``val`` / ``test`` (``split_indices``): a permutation ``perm`` of
  all listed names drawn with ``np.random.default_rng(seed)``; the first
  ``n_test = round(n * test_fraction)`` are test (80/20 as in paper 000: exactly the
  test images of the former 2-way split), the rest is the training part. Its *last*
  ``round(n_trainpart * val_fraction)`` (``VAL_FRACTION`` = 10 %, at least one image
  when the training part has two or more) are val, the others train. So val is a
  seeded random 10 % of the former train split and ``train[:k]`` is still the first
  k images of the former train split. For CelebA the official
  ``list_eval_partition.txt`` is used when it sits in the data dir (0 train, 1 val,
  2 test; seeded order inside each), ``val_fraction`` then only applies if the file
  has no val entries. Our half-res CelebA copy holds only official-*train* ids, so
  its split is always our own seeded one (a partition file that leaves train or test
  empty is ignored, with a warning); reports must say so.
  ``load_faces(limit=k)`` returns the first k of the split's order, i.e. a seeded
  random sample.
* Identity-disjoint splits (``by_identity=True``, ``split_by_identity``): for
  datasets with identities (LFW: the person is the folder name; ``images:`` sources:
  the parent folder) whole identities are assigned, in seeded order, to test until
  it holds >= ``round(n * test_fraction)`` images, then to val (>= ``val_fraction``
  of the rest), the remaining ones to train; no person is on two sides. Image order
  inside each split is the seeded ``perm`` as above. Off by default (the ``paper``
  profile turns it on); it is a different split, recorded in the cache index.
* Splits are over *all* listed names, so they do not depend on crop, size or
  decodability. An image that cannot be used (corrupt, or unexpected mode/size)
  raises ``DataError`` only if it is in the requested subset.

Crops (``crop=``), then LANCZOS resize to ``size x size`` unless already that size
----------------------------------------------------------------------------------
``default``  lfw / celeba-hq / generic: centre square crop (= whole image for the
             square LFW 250 and CelebA-HQ images). celeba: the DCGAN convention,
             centre crop of 108x108 on the 178x218 image, box (35, 55, 143, 163);
             the box scales with the image (54x54 at (17, 27) on the 89x109 copy,
             offsets floored, so it sits half a source pixel off the official box).
``whole``    resize the whole image to size x size (SRGAN; aspect not preserved).
Grayscale (L), LA, RGBA / RGBX (alpha dropped, as torchvision's loader does), palette
(P / PA, via RGBA) and CMYK / YCbCr images are converted to RGB and counted as
"converted"; other modes (16-bit, float, bilevel) and sizes other than the dataset's
native ones are "unexpected" and excluded. A crop smaller than the requested size is
upscaled (LANCZOS); ``prepare`` warns (``UpscaleWarning``) with the count and examples
per dataset/size and records them in the index (``variants[...]["upscaled"]``). The DCGAN crop
of our half-resolution CelebA copy (54x54) at 64 px is the project's own choice: logged, not warned.
For JPEGs much larger than needed we let libjpeg decode at 1/2, 1/4 or 1/8 scale
(``Image.draft``) only while the crop stays >= 2x the target size; this depends on
the image and variant alone, so it is deterministic and cache == direct decode.

Processed cache (``prepare``, the DVC ``prepare_data`` stage)
-----------------------------------------------------------
``<processed_dir>/<dataset>__<crop>__<size>.npy``: uint8 NHWC, the usable images in
list order; ``<processed_dir>/index.json`` (``INDEX_VERSION`` 2): per dataset the
source path, its sha256 (for a folder: sha256 over sorted names and file contents),
names, train/val/test indices, seed, test_fraction, val_fraction, split_by
(``image`` or ``identity``), ``cached`` (name index of every npy row) and the
corrupt / unexpected / converted images with reasons. ``load_faces`` uses the
cache when it matches and otherwise decodes straight from the archive. An index of
an older version (version 1: train/test only) is ignored with a warning saying how
to rebuild it (``dvc repro prepare_data`` or ``python -m facefill.pipeline prepare``).
``prepare`` of some variants keeps the other variants of the same dataset when
their split and source are unchanged.

Errors (all ``FacefillError``; nothing the user has is deleted)
---------------------------------------------------------------
* truncated / corrupt .zip or .tar(.gz) -> ``DataError`` naming the archive: re-download
  or replace it (a gzip-ped tar whose headers break off mid-archive is caught too:
  tarfile alone would silently list fewer images);
* truncated / unreadable processed ``.npy`` -> ``DataError`` naming the file and the
  command that rebuilds it. ``load_faces`` does *not* rebuild it by itself (a rebuild
  rewrites the dataset's cache entry and can take many minutes, which a notebook
  should not start behind the user's back); the broken file is left in place;
* ``prepare`` failing on one dataset keeps the datasets it already finished.

Modules
-------
``sources`` (dataset table, data dir, finding a dataset), ``archives`` (listing and
reading members), ``splits``, ``decode`` (one image: crops, resize), ``cache`` (the
processed cache), ``loading`` (``load_faces``, ``to_tensor``, ``to_uint8``),
``prepare_stage`` (``prepare``), ``cli`` (``python -m facefill.data``). Everything
public is re-exported here: ``from facefill.data import load_faces``.
"""

from __future__ import annotations

from .archives import list_images
from .cache import DEFAULT_PROCESSED_DIR, INDEX_NAME, INDEX_VERSION, _stale_warned
from .cli import info, main
from .decode import CELEBA_CROP, CELEBA_W, CONVERTIBLE_MODES, CROPS, HALF_RES_CELEBA
from .loading import load_faces, to_tensor, to_uint8
from .prepare_stage import UpscaleWarning, prepare
from .sources import (ARCHIVE_EXTS, DATASETS, DEFAULT_DATA_DIR, ENV_ALLOW_DOWNLOAD, ENV_DATA_DIR, GENERIC, IMAGE_EXTS,
                      REPO_ROOT, DatasetSpec, find_archive, log, resolve_data_dir)
from .splits import SPLITS, TEST_FRACTION, VAL_FRACTION, identities, split_by_identity, split_indices, warn_user

__all__ = [
    "ARCHIVE_EXTS", "CELEBA_CROP", "CELEBA_W", "CONVERTIBLE_MODES", "CROPS", "DATASETS", "DEFAULT_DATA_DIR",
    "DEFAULT_PROCESSED_DIR", "ENV_ALLOW_DOWNLOAD", "ENV_DATA_DIR", "GENERIC", "HALF_RES_CELEBA", "IMAGE_EXTS",
    "INDEX_NAME", "INDEX_VERSION", "REPO_ROOT", "SPLITS", "TEST_FRACTION", "VAL_FRACTION", "DatasetSpec",
    "UpscaleWarning", "find_archive", "identities", "info", "list_images", "load_faces", "log", "main", "prepare",
    "resolve_data_dir", "split_by_identity", "split_indices", "to_tensor", "to_uint8", "warn_user",
]
