"""The wake-phrase task: synthetic corpus and decision rules (:mod:`.task`), speech synthesis, the
filterbank front end, WAV folders and the fixed data sets of experiments (:mod:`.datasets`)."""
