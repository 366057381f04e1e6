"""The downstream tasks: valid rows, neighbour search, the core for any label, redshift, properties and
classes, similarity, retrieval and the galaxy explorer."""
