"""Documents in, evidence out: loading, chunking, embedding, the Chroma store, indexing, retrieval."""
