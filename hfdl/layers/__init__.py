"""What the model folders share, kept in one place and copied into them.

A model folder must import nothing from hfdl (it is what ``trust_remote_code`` copies to the Hub), so:

* ``hfdl_utils.py`` (config checks, the course's weight init, input checks, losses) is copied byte for byte into
  every model folder, and ``hfdl_image_processing.py`` (the image processor base) into the folders of image models;
* model blocks that one architecture takes from another (VGG's from AlexNet's, GPT's from BERT's) are copied into
  the modeling file under a ``# Copied from hfdl.<module path>.<name>`` marker.

``python -m hfdl.tools.check_copies`` checks both kinds of copy; ``--fix`` rewrites them from their source.
"""
