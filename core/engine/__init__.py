"""The coordinator and the components it drives through each session.

- :mod:`.coordinator` -- the four phases of each day, and nothing else;
- :mod:`.assembly` -- the run's parts built from a validated config; the checks of
  user classes that validation is handed (``check_classes``);
- :mod:`.processor` -- the stream queues and the data processor (bars into SessionData);
- :mod:`.quality` -- the pre-session screen and the data-quality manager;
- :mod:`.indicators` -- the indicator manager (the math is in ``core.model.indicators``);
- :mod:`.scanners` -- what a scanner sees (``view``), the built-ins, the scanner manager;
- :mod:`.roster` -- who is in the session: opening a day, insertions and removals;
- :mod:`.midsession` and :mod:`.pause` -- work at bar boundaries, through one pause gate;
- :mod:`.records` and :mod:`.results` -- what a day and a run leave behind.

The component lifecycle is :mod:`core.lifecycle`; user classes load through
:mod:`core.plugins`.
"""
