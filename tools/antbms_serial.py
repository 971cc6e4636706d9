# placeholder replaced below
def add_parsers(sub):
    pass
