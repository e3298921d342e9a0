"""Media code shared by every builder: decode video, find faces, cut audio windows, and turn
one clip into the arrays of one example."""
