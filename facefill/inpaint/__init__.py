"""Inpainting by optimisation and classical baselines (paper 003).

* :mod:`facefill.inpaint.semantic` — semantic inpainting by latent search in a DCGAN (Yeh et al.,
  CVPR 2017) with paper 003's dlib landmark loss and the variants that make landmarks act.
* :mod:`facefill.inpaint.local` — local methods (biharmonic, total variation, OpenCV Telea and
  Navier–Stokes), nearest-neighbour filling from the training set, Poisson blending.
"""
