"""What the book's pages use: figures and animations, headline results, notebook execution and
pair checks, and the student copies with their Colab links."""
