"""Document embeddings: vector storage and nearest-neighbour search (pgvector or portable)."""
