"""The Parquet store, the day loader, validation of config against data, the sample and the importer."""
