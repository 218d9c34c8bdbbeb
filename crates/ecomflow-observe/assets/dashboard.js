// The dashboard's script (being built).
