"""Documents in, evidence out: loading, chunking, embedding, Chroma store, indexing, retrieval."""
