"""XAStruct and CGXAS on the package's data layer (seeds 002 and 003; notebooks 13, 14, 15).

* :mod:`specfusion_lib.xas_structure.grid`: the one absolute energy grid per absorbing element
  (edge-normalised μ on a fixed window relative to the tabulated K edge) that every forward
  model predicts and every inverse model reads.
* :mod:`specfusion_lib.xas_structure.local_env`: CrystalNN labels of an absorbing element (CN,
  mean nearest-neighbour distance, neighbour type) and the sites the forward model pools.
* :mod:`specfusion_lib.xas_structure.encoder`: per-site features of the pretrained CHGNet that
  ships in ``chgnet``, frozen, pooled over the absorber and its neighbours.
* :mod:`specfusion_lib.xas_structure.dataset`: the cached (material, element) table of a
  snapshot: pooled features, spectrum on the grid, labels, structure family.
* :mod:`specfusion_lib.xas_structure.sgmlp`: XAStruct's SwiGLU-gated MLP and the ablation
  variants of its head.
* :mod:`specfusion_lib.xas_structure.fitting`: the AdamW + early-stopping loop every XAStruct
  network shares.
* :mod:`specfusion_lib.xas_structure.forward`: the structure → spectrum model, its training and
  the forward-model interface.
* :mod:`specfusion_lib.xas_structure.baselines`: mean-spectrum and nearest-neighbour forward
  baselines.
* :mod:`specfusion_lib.xas_structure.metrics`: MAE, relative square error, Pearson and
  edge-energy error, written out.
* :mod:`specfusion_lib.xas_structure.inverse`: spectrum → CN / MNND / neighbour-type models and
  their baselines.
* :mod:`specfusion_lib.xas_structure.study`: the experiments of notebooks 13 and 14 (splits,
  forward and inverse studies, real-structure check, headlines).
* :mod:`specfusion_lib.xas_structure.crystal_graph`: crystal graphs (element-property node
  features, nearest-neighbour edges, Gaussian distance expansion) for CGXAS.
* :mod:`specfusion_lib.xas_structure.cgxas`: the universal crystal-graph model (one network for
  every absorbing element, per-site decoder, mask pooling), its training and forward interface.
* :mod:`specfusion_lib.xas_structure.calibration`: fine-tuning the universal model on measured
  spectra (four variants) and the nested leave-one-compound-out evaluation.
* :mod:`specfusion_lib.xas_structure.cgxas_study`: the experiments of notebook 15 (universal vs
  per-element models, latent space, measured samples among simulated ones).
* :mod:`specfusion_lib.xas_structure.calibrated_data`: a snapshot of calibrated (experiment-
  like) spectra and the oxidation-state / CN models trained on it.
* :mod:`specfusion_lib.xas_structure.user`: ``specfusion predict-xanes`` and ``specfusion
  local-structure`` as functions.
* :mod:`specfusion_lib.xas_structure.user_calibration`: ``specfusion calibrate`` and
  ``predict-xanes --calibrated`` as functions.
"""
