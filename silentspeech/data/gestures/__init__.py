"""Gesture and hand-kinematics EMG datasets: readers, splits, windows, one module each.

Data flow, one way::

    files --reader--> GestureCorpus (filtered segments, one label and one
          split unit each) --split_segments--> train/val/test segments
          --GestureWindows--> sliding windows, z-scored with training statistics

Each reader reads one dataset in its own published file format (docs/design.md,
*Downstream heads and published results*): NinaPro DB5 and DB8 ``.mat`` files
(:mod:`.ninapro`), EPN-612 per-user JSON (:mod:`.epn612`), the UCI "EMG data
for gestures" text files (:mod:`.uci`), and a generic folder of labelled CSV
or NPY recordings (:mod:`.folder`). A reader filters each whole recording
first (zero-phase filters need the context;
:func:`silentspeech.preprocessing.condition_emg`), resamples it if asked, and
only then cuts it into *segments* (:mod:`.corpus`): contiguous stretches with
one label and one *split unit* (a repetition, an acquisition, a subject, a
file). Splits (:mod:`.splits`) assign whole units, and windows
(:mod:`.windows`) never cross a segment boundary, so no test window can share
a sample with a training window. :mod:`.recipe` does all of it for a recipe's
``data:`` section.

The published protocols' splits are in
:data:`~silentspeech.data.gestures.splits.PROTOCOL_SPLITS` (TinyMyo's: DB5 by
repetition, DB8 by acquisition, EPN-612 by user group, UCI by subject). Arrays
are ``(samples, channels)`` here, as in the files; windows come out channels
first, ``(channels, samples)``, as models take them.

No library reads these formats (scipy reads the ``.mat`` containers, the
json and csv modules the rest); the readers are ours.
"""
