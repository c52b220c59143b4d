"""Snapshots and their sources (SPEC §3).

* :mod:`specfusion_lib.data.snapshot`: the snapshot format (materials, spectra, manifest with
  checksums), reading with verification, atomic writing.
* :mod:`specfusion_lib.data.sources`: open a snapshot by folder; overview tables.
* :mod:`specfusion_lib.data.structure_labels`: labels exact for a structure (crystal system
  via spglib, density, bond-valence oxidation states, CrystalNN coordination numbers).
* :mod:`specfusion_lib.data.families`: structure families, the split key (anonymous formula +
  space group, joined by provenance links such as the demo pool's prototypes).
* :mod:`specfusion_lib.data.real_structures`: real Materials Project structures, a train file
  with its fixed family-wise validation part and a check file that is never trained on.
* :mod:`specfusion_lib.data.real_spectra`: the resumable FEFF10 build of the real structures'
  TM K edges (retry ladder, failure rates before and after).
* :mod:`specfusion_lib.data.mp`: the Materials Project source (``mp-api``).
* :mod:`specfusion_lib.data.demo_pool`: the demo's candidate structures (prototypes,
  substitutions) and their CHGNet relaxation cache.
* :mod:`specfusion_lib.data.demo`: the demo snapshot build (FEFF10 spectra, labels).
* :mod:`specfusion_lib.data.site_spectra`: the per-site spectra behind a snapshot's averages,
  read back from its FEFF cache and stored as the snapshot's ``site_spectra`` supplement.
* :mod:`specfusion_lib.data.fixture`: the small test snapshot.
* :mod:`specfusion_lib.data.measured`: the measured spectra of ``maml-apps-rfxas``.
* :mod:`specfusion_lib.data.statistics`: dataset statistics of notebook 01.
"""
