//! indexer: the npm index — its schema, reads, and ingest from upstream.
