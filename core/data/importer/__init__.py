"""Import CSV bars into the Parquet store (`backtest data import`).

- ``csv_import``: :func:`import_csv` step by step, and the :class:`ImportReport`;
- ``reading``: finding the files, telling their columns, reading them through DuckDB, gzip checks;
- ``rows``: row checks, de-duplication across files and the ``file:line: reason`` report;
- ``writing``: the merge with what the store holds, written through the store's locked writer.
"""

from core.data.importer.csv_import import ImportReport, import_csv
from core.data.importer.reading import Progress, expand_files
from core.data.importer.rows import InvalidRow

__all__ = ["ImportReport", "InvalidRow", "Progress", "expand_files", "import_csv"]
