"""Converters from source datasets to the project's verl row contract (``verl_distill.schema``).

One module per source, each with a pure ``to_row(record, *, index, split, ...) -> Rows`` and a thin CLI
(``python -m data_prep.<source> --help``) that writes ``{split}.parquet`` (RL rows), ``{split}_sft.parquet`` (SFT
rows, when gold solutions exist) and a ``manifest.json`` last:

* :mod:`data_prep.gsm8k`: GSM8K natural-language CoT (``####`` answers).
* :mod:`data_prep.gsm8k_pot`: GSM8K program-of-thought from mwp_cot_design's straight-line programs.
* :mod:`data_prep.svamp`: SVAMP program-of-thought or natural-language CoT from ReFT's files.
* :mod:`data_prep.test_sets`: GSM8K and SVAMP test sets (RL rows only).
* :mod:`data_prep.synthetic_arith`: our own templated arithmetic word problems, any size, by seed.
"""
