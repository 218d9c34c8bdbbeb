//! The generator's fixed catalog: ten products, each with one name, category, brand and price band.

/// One product of the catalog.
#[derive(Debug)]
pub(crate) struct Product {
    /// `product_1` .. `product_10`.
    pub id: &'static str,
    /// The one name this product always has.
    pub name: &'static str,
    /// One of [`CATEGORIES`].
    pub category: &'static str,
    /// One of [`BRANDS`].
    pub brand: &'static str,
    /// Lowest and highest price, in cents (inclusive).
    pub price_cents: (u32, u32),
}

const fn product(
    id: &'static str,
    name: &'static str,
    category: &'static str,
    brand: &'static str,
    low: u32,
    high: u32,
) -> Product {
    Product {
        id,
        name,
        category,
        brand,
        price_cents: (low * 100, high * 100),
    }
}

/// The products, indexed by number - 1.
pub(crate) const PRODUCTS: [Product; 10] = [
    product("product_1", "laptop", "computer", "apple", 600, 1000),
    product("product_2", "mouse", "accessories", "logitech", 10, 120),
    product("product_3", "keyboard", "accessories", "microsoft", 20, 200),
    product("product_4", "monitor", "electronics", "samsung", 120, 900),
    product("product_5", "speaker", "home", "sony", 30, 450),
    product("product_6", "printer", "office", "hp", 60, 600),
    product("product_7", "scanner", "office", "canon", 50, 500),
    product("product_8", "projector", "office", "dell", 150, 1000),
    product("product_9", "router", "computer", "lenovo", 40, 400),
    product("product_10", "switch", "computer", "hp", 30, 600),
];

/// Every category of the original generator.
#[cfg(test)]
pub(crate) const CATEGORIES: [&str; 9] = [
    "electronics",
    "office",
    "computer",
    "accessories",
    "beauty",
    "storage",
    "home",
    "software",
    "other",
];

/// Every brand of the original generator.
#[cfg(test)]
pub(crate) const BRANDS: [&str; 10] = [
    "apple",
    "samsung",
    "dell",
    "hp",
    "lenovo",
    "microsoft",
    "sony",
    "logitech",
    "canon",
    "nikon",
];

/// Currencies, as the original generator spells them.
pub(crate) const CURRENCIES: [&str; 10] = [
    "USD", "EUR", "GBP", "JPY", "KRW", "CNY", "INR", "BRL", "MXN", "ARS",
];

/// Payment methods.
pub(crate) const PAYMENT_METHODS: [&str; 5] = [
    "credit_card",
    "debit_card",
    "paypal",
    "bank_transfer",
    "cash",
];

/// Payment statuses.
pub(crate) const PAYMENT_STATUSES: [&str; 3] = ["success", "failed", "pending"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_follow_the_seed_lists() {
        let names = [
            "laptop",
            "mouse",
            "keyboard",
            "monitor",
            "speaker",
            "printer",
            "scanner",
            "projector",
            "router",
            "switch",
        ];
        for (i, p) in PRODUCTS.iter().enumerate() {
            assert_eq!(p.id, format!("product_{}", i + 1));
            assert_eq!(p.name, names[i]);
            assert!(CATEGORIES.contains(&p.category), "{p:?}");
            assert!(BRANDS.contains(&p.brand), "{p:?}");
            let (low, high) = p.price_cents;
            assert!(1_000 <= low && low < high && high <= 100_000, "{p:?}");
        }
    }
}
