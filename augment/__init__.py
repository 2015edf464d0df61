"""assay.augment: text augmentation with the books kept and the labels guarded.

Steps (registered through `assay.recipes.catalog`): `eda` (Wei & Zou's four operations),
`synonyms` (offline WordNet, part-of-speech aware), `shuffle` (words or sentences),
`char_noise` (keyboard typos, OCR confusions), `domain_vocab` (lexicon injection and
domain-term mining). Every one takes the `guard` option (`assay.augment.guard`).
"""
