"""The LLM side: MiniCPM GGUF catalog, getting models onto disk, and the llama.cpp engine."""
