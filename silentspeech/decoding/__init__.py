"""From CTC posteriors to text: word n-gram language models (estimation, ARPA files) and beam search."""
