use super::Invalid;

/// Where an order is in its life. Lowercase on output, any case on input.
///
/// ```text
/// pending   -> confirmed | cancelled
/// confirmed -> shipped   | cancelled
/// shipped   -> delivered | cancelled
/// delivered, cancelled: terminal
/// ```
/// The database enforces the same table (`write.order_transition_allowed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    Pending,
    Confirmed,
    Shipped,
    Delivered,
    Cancelled,
}

/// An impossible transition, stated so that a person can act on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionError {
    pub from: OrderStatus,
    pub to: OrderStatus,
}

impl std::fmt::Display for TransitionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let allowed: Vec<&str> = self.from.next().iter().map(|s| s.as_str()).collect();
        if allowed.is_empty() {
            write!(
                f,
                "the order is {} and cannot change any more (it is terminal)",
                self.from
            )
        } else {
            write!(
                f,
                "the order is {} and cannot become {}; from {} it can become {}",
                self.from,
                self.to,
                self.from,
                allowed.join(" or ")
            )
        }
    }
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 5] = [
        OrderStatus::Pending,
        OrderStatus::Confirmed,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Cancelled,
    ];

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(raw.trim()))
            .ok_or_else(|| {
                Invalid(format!(
                    "{raw:?} is not an order status; expected one of pending, confirmed, shipped, delivered, cancelled"
                ))
            })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Confirmed => "confirmed",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    /// The statuses this one may move to.
    pub fn next(self) -> &'static [OrderStatus] {
        use OrderStatus::*;
        match self {
            Pending => &[Confirmed, Cancelled],
            Confirmed => &[Shipped, Cancelled],
            Shipped => &[Delivered, Cancelled],
            Delivered | Cancelled => &[],
        }
    }

    pub fn is_terminal(self) -> bool {
        self.next().is_empty()
    }

    /// Check that `self -> to` is a legal move.
    pub fn transition(self, to: OrderStatus) -> Result<OrderStatus, TransitionError> {
        if self.next().contains(&to) {
            Ok(to)
        } else {
            Err(TransitionError { from: self, to })
        }
    }
}

impl std::fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::OrderStatus::*;
    use super::*;

    #[test]
    fn every_pair_of_statuses_is_allowed_exactly_as_the_table_says() {
        let allowed = [
            (Pending, Confirmed),
            (Pending, Cancelled),
            (Confirmed, Shipped),
            (Confirmed, Cancelled),
            (Shipped, Delivered),
            (Shipped, Cancelled),
        ];
        for from in OrderStatus::ALL {
            for to in OrderStatus::ALL {
                let expected = allowed.contains(&(from, to));
                assert_eq!(
                    from.transition(to).is_ok(),
                    expected,
                    "{from} -> {to} should be {}",
                    if expected { "allowed" } else { "refused" }
                );
            }
        }
    }

    #[test]
    fn delivered_and_cancelled_are_terminal() {
        assert!(Delivered.is_terminal());
        assert!(Cancelled.is_terminal());
        assert!(!Shipped.is_terminal());
    }

    #[test]
    fn a_status_is_parsed_in_any_case() {
        assert_eq!(OrderStatus::parse("CONFIRMED"), Ok(Confirmed));
        assert_eq!(OrderStatus::parse("Shipped"), Ok(Shipped));
        assert_eq!(OrderStatus::parse(" pending "), Ok(Pending));
    }

    #[test]
    fn an_unknown_status_is_rejected_with_the_list_of_known_ones() {
        let err = OrderStatus::parse("lost").unwrap_err();
        assert!(err.0.contains("pending, confirmed"), "{err}");
    }

    #[test]
    fn a_refused_transition_says_where_the_order_can_go() {
        let err = Pending.transition(Delivered).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the order is pending and cannot become delivered; from pending it can become confirmed or cancelled"
        );
        let err = Delivered.transition(Cancelled).unwrap_err();
        assert!(err.to_string().contains("terminal"));
    }

    #[test]
    fn output_is_lowercase() {
        for s in OrderStatus::ALL {
            assert_eq!(s.as_str(), s.as_str().to_lowercase());
            assert_eq!(OrderStatus::parse(s.as_str()), Ok(s));
        }
    }
}
