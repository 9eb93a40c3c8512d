"""``herald callbacks``: the events apps asked for, posted to their callback URLs."""
