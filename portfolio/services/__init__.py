"""Services: the do_<verb> functions that own transactions and side effects."""
