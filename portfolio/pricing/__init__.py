"""Price sources behind one interface (base.PriceSource), looked up by name in registry.SOURCES, and FX."""
