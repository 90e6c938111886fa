//! OpenAI-compatible client.
