"""The documents stage of a publication: one module per contract (the ComputeCompass
files, the window folders, the tidy exports, index.json and the datacard), each from the
summarize stage's data to bytes, and `jsonform`, the one form they are all written in."""
