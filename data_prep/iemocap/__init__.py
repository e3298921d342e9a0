"""IEMOCAP: utterance clips cut from the dialog videos by the EmoEvaluation times."""
