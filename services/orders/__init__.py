"""Orders: places orders against catalog reservations, keeps their status machine and history."""
