"""runmon rules: metrics -> cue decisions.

Pure decision logic: the cue catalog, rule configuration, baselines, session phases and pain
triage. No I/O and no clock of its own: time, baselines and history come in as data.

Exception tree (all in :mod:`rules.errors`)::

    RulesError
    └── RuleConfigError      a rule file that does not validate (names the bad field)
"""
