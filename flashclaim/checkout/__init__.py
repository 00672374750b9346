"""The use side: coupons applied to a cart by their own rules (quote), and orders that
lock, confirm, cancel and refund them (orders)."""
