"""Strategies, the simulated broker, the portfolio and the ledger.

- :mod:`core.execution.strategy`: the user API (re-exported for strategy files by
  :mod:`core.strategy`), with the guide in its docstring;
- :mod:`core.execution.callbacks`: ``Strategy``, the callbacks a strategy overrides;
- :mod:`core.execution.context`: what the callbacks receive, ``StrategyContext`` and ``Batch``;
- :mod:`core.execution.params`: declared params, checked before any session;
- :mod:`core.execution.manager`: ``StrategyManager``, the component that calls strategies;
- :mod:`core.execution.orders`: ``Order``, ``Fill`` and the checks an order passes when submitted;
- :mod:`core.execution.broker`: ``Broker`` and ``Costs``, how orders fill;
- :mod:`core.execution.portfolio`: ``Portfolio``, what crosses days;
- :mod:`core.execution.ledger`: the run's record, ``Ledger``, and each session's ``EquityCurve``.
"""
