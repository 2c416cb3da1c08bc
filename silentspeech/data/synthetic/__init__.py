"""The synthetic corpora the project generates itself: speech (EMG, audio, text in the Gaddy layout), gestures, and the prompt grammar."""
