"""The synthetic resident register (住民基本台帳) of a municipality and the simulator of its daily
changes (異動): the data source the municipal adapter streams into BCL."""
