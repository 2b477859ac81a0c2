"""GPU rental marketplace: offers, jobs, escrow, disputes and reputation (pure domain)."""
