"""From CTC posteriors to text: word n-gram language models (estimation, ARPA files) and beam search."""

#: Decoding lexicon choices of ``tune-lm`` (here, free of pyctcdecode, for the CLI's choices); the first tunes
#: alpha/beta: ``lm`` (the LM's own words), ``none`` (lexicon-free), ``train`` (the training text's words).
LEXICONS = ("lm", "none", "train")
