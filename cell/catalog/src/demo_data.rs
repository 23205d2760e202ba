//! Word lists for the demo generator: per cuisine, restaurant name parts, menu categories
//! with items and typical prices (cents), ingredients for descriptions, and customizations.

/// (item name, typical price in cents)
pub(crate) type Item = (&'static str, i64);

pub(crate) struct CuisineDef {
    pub tag: &'static str,
    /// Relative frequency in a city.
    pub weight: u32,
    pub name_first: &'static [&'static str],
    pub name_second: &'static [&'static str],
    pub categories: &'static [(&'static str, &'static [Item])],
    pub ingredients: &'static [&'static str],
    /// A required single-choice size group for main items, with price deltas.
    pub sizes: &'static [(&'static str, i64)],
    /// Paid extras (optional, up to 3).
    pub extras: &'static [(&'static str, i64)],
    /// Free removals ("No onions").
    pub removals: &'static [&'static str],
    /// Offers a spice level group.
    pub spicy: bool,
    /// Preparation time range, minutes.
    pub prep: (u32, u32),
    /// Share of restaurants keeping bakery hours (early morning to mid afternoon).
    pub bakery_hours: bool,
}

#[rustfmt::skip]
pub(crate) const CUISINES: &[CuisineDef] = &[
    CuisineDef {
        tag: "pizza",
        weight: 14,
        name_first: &["Tony's", "Bella", "Napoli", "Luigi's", "Brick Oven", "Slice of", "Mama Rosa's", "Vesuvio", "Crust &"],
        name_second: &["Pizzeria", "Pizza Co.", "Slice House", "Pizza Kitchen", "Wood Fired", "Pie Shop"],
        categories: &[
            ("Classic Pizzas", &[("Margherita", 1199), ("Pepperoni", 1349), ("Quattro Formaggi", 1449), ("Hawaiian", 1349), ("Marinara", 999), ("Diavola", 1399), ("Capricciosa", 1499), ("Funghi", 1299)]),
            ("Specialty Pizzas", &[("BBQ Chicken", 1599), ("Truffle Mushroom", 1799), ("Meat Lovers", 1699), ("Veggie Supreme", 1499), ("Prosciutto & Rocket", 1749), ("Buffalo Chicken", 1599)]),
            ("Starters", &[("Garlic Knots", 599), ("Bruschetta", 699), ("Mozzarella Sticks", 749), ("Chicken Wings", 999), ("Caesar Salad", 899), ("Caprese Salad", 949)]),
            ("Calzones", &[("Classic Calzone", 1299), ("Spinach Ricotta Calzone", 1299), ("Meatball Calzone", 1399)]),
        ],
        ingredients: &["San Marzano tomatoes", "fresh mozzarella", "basil", "oregano", "parmesan", "garlic", "olive oil", "mushrooms", "roasted peppers"],
        sizes: &[("Small 10\"", -200), ("Medium 12\"", 0), ("Large 14\"", 300), ("Family 18\"", 700)],
        extras: &[("Extra cheese", 150), ("Pepperoni", 200), ("Jalapeños", 100), ("Olives", 100), ("Gluten-free crust", 300)],
        removals: &["No onions", "No garlic", "No basil"],
        spicy: false,
        prep: (12, 25),
        bakery_hours: false,
    },
    CuisineDef {
        tag: "sushi",
        weight: 8,
        name_first: &["Sakura", "Umi", "Tokyo", "Kaiseki", "Hana", "Koi", "Zen", "Maki"],
        name_second: &["Sushi", "Sushi Bar", "Sushi House", "Omakase", "Izakaya"],
        categories: &[
            ("Nigiri", &[("Salmon Nigiri", 599), ("Tuna Nigiri", 699), ("Yellowtail Nigiri", 699), ("Eel Nigiri", 749), ("Shrimp Nigiri", 549), ("Scallop Nigiri", 799)]),
            ("Rolls", &[("California Roll", 899), ("Spicy Tuna Roll", 999), ("Dragon Roll", 1499), ("Rainbow Roll", 1599), ("Philadelphia Roll", 1099), ("Avocado Roll", 699), ("Shrimp Tempura Roll", 1199)]),
            ("Starters", &[("Edamame", 499), ("Miso Soup", 399), ("Gyoza", 699), ("Seaweed Salad", 599), ("Agedashi Tofu", 649)]),
            ("Bowls", &[("Salmon Poke Bowl", 1499), ("Chirashi Bowl", 1899), ("Teriyaki Chicken Bowl", 1299), ("Unagi Don", 1799)]),
        ],
        ingredients: &["sushi rice", "nori", "avocado", "cucumber", "sesame", "tobiko", "scallions", "pickled ginger", "wasabi"],
        sizes: &[("6 pieces", 0), ("12 pieces", 700)],
        extras: &[("Extra avocado", 150), ("Spicy mayo", 75), ("Eel sauce", 75), ("Brown rice", 100)],
        removals: &["No wasabi", "No ginger", "No sesame"],
        spicy: false,
        prep: (15, 30),
        bakery_hours: false,
    },
    CuisineDef {
        tag: "burgers",
        weight: 12,
        name_first: &["Big", "Smash", "Patty's", "Bun &", "Grill", "Stack", "Route 66", "Backyard"],
        name_second: &["Burgers", "Burger Joint", "Burger Bar", "Grill House", "Diner"],
        categories: &[
            ("Burgers", &[("Classic Cheeseburger", 999), ("Double Smash Burger", 1299), ("Bacon BBQ Burger", 1349), ("Mushroom Swiss Burger", 1249), ("Jalapeño Burger", 1199), ("Veggie Burger", 1099), ("Crispy Chicken Burger", 1149)]),
            ("Sides", &[("Fries", 399), ("Sweet Potato Fries", 499), ("Onion Rings", 499), ("Loaded Fries", 699), ("Coleslaw", 349), ("Mac & Cheese", 599)]),
            ("Hot Dogs & More", &[("Classic Hot Dog", 699), ("Chili Dog", 849), ("Chicken Tenders", 899), ("Buffalo Wings", 1049)]),
            ("Shakes", &[("Vanilla Shake", 549), ("Chocolate Shake", 549), ("Strawberry Shake", 549), ("Oreo Shake", 649)]),
        ],
        ingredients: &["aged cheddar", "pickles", "lettuce", "tomato", "brioche bun", "house sauce", "caramelized onions", "smoked bacon"],
        sizes: &[("Single", 0), ("Double", 350), ("Triple", 650)],
        extras: &[("Extra cheese", 100), ("Bacon", 200), ("Fried egg", 150), ("Avocado", 200)],
        removals: &["No onions", "No pickles", "No tomato", "No sauce"],
        spicy: false,
        prep: (10, 20),
        bakery_hours: false,
    },
    CuisineDef {
        tag: "thai",
        weight: 7,
        name_first: &["Bangkok", "Siam", "Thai Orchid", "Lotus", "Chiang Mai", "Baan", "Sabai"],
        name_second: &["Kitchen", "Thai Cuisine", "Street Food", "Thai House", "Garden"],
        categories: &[
            ("Noodles", &[("Pad Thai", 1299), ("Pad See Ew", 1299), ("Drunken Noodles", 1349), ("Boat Noodle Soup", 1399)]),
            ("Curries", &[("Green Curry", 1399), ("Red Curry", 1399), ("Massaman Curry", 1449), ("Panang Curry", 1449), ("Yellow Curry", 1399)]),
            ("Starters", &[("Spring Rolls", 599), ("Chicken Satay", 799), ("Tom Yum Soup", 699), ("Tom Kha Soup", 749), ("Papaya Salad", 849), ("Larb Gai", 899)]),
            ("Rice Dishes", &[("Thai Basil Chicken", 1299), ("Pineapple Fried Rice", 1349), ("Crab Fried Rice", 1599), ("Garlic Pepper Pork", 1299)]),
        ],
        ingredients: &["jasmine rice", "coconut milk", "Thai basil", "lemongrass", "galangal", "kaffir lime", "peanuts", "bean sprouts", "fish sauce"],
        sizes: &[("Regular", 0), ("Large", 400)],
        extras: &[("Extra chicken", 300), ("Shrimp", 400), ("Tofu", 200), ("Fried egg", 150)],
        removals: &["No peanuts", "No cilantro", "No fish sauce"],
        spicy: true,
        prep: (12, 25),
        bakery_hours: false,
    },
    CuisineDef {
        tag: "indian",
        weight: 7,
        name_first: &["Taj", "Bombay", "Masala", "Tandoor", "Delhi", "Spice", "Saffron", "Royal"],
        name_second: &["Palace", "Kitchen", "Curry House", "Tandoori", "Darbar", "Indian Cuisine"],
        categories: &[
            ("Curries", &[("Butter Chicken", 1499), ("Chicken Tikka Masala", 1499), ("Lamb Rogan Josh", 1699), ("Palak Paneer", 1299), ("Chana Masala", 1149), ("Dal Makhani", 1199), ("Vindaloo", 1549)]),
            ("From the Tandoor", &[("Tandoori Chicken", 1499), ("Seekh Kebab", 1399), ("Paneer Tikka", 1299)]),
            ("Starters", &[("Samosa", 599), ("Onion Bhaji", 599), ("Pakora", 649), ("Papadum", 299)]),
            ("Rice & Breads", &[("Chicken Biryani", 1599), ("Vegetable Biryani", 1399), ("Garlic Naan", 399), ("Butter Naan", 349), ("Basmati Rice", 399), ("Roti", 299)]),
        ],
        ingredients: &["garam masala", "ginger", "garlic", "cream", "tomatoes", "cumin", "coriander", "cardamom", "fenugreek"],
        sizes: &[("Regular", 0), ("Large", 450)],
        extras: &[("Extra paneer", 250), ("Raita", 150), ("Mango chutney", 100), ("Extra naan", 300)],
        removals: &["No cilantro", "No onions", "No cream"],
        spicy: true,
        prep: (15, 30),
        bakery_hours: false,
    },
    CuisineDef {
        tag: "mexican",
        weight: 9,
        name_first: &["El", "La Casa de", "Taqueria", "Los", "Casa", "Chipotle &", "Agave"],
        name_second: &["Taco Shop", "Cantina", "Burrito Bar", "Mexican Grill", "Cocina"],
        categories: &[
            ("Tacos", &[("Al Pastor Tacos", 1099), ("Carne Asada Tacos", 1199), ("Fish Tacos", 1199), ("Carnitas Tacos", 1099), ("Birria Tacos", 1299), ("Veggie Tacos", 999)]),
            ("Burritos & Bowls", &[("Chicken Burrito", 1199), ("Steak Burrito", 1349), ("Bean & Cheese Burrito", 999), ("Burrito Bowl", 1249), ("Breakfast Burrito", 1049)]),
            ("Starters", &[("Chips & Guacamole", 699), ("Nachos", 999), ("Elote", 549), ("Queso Dip", 649), ("Chicken Quesadilla", 1049)]),
            ("Platters", &[("Enchiladas Verdes", 1399), ("Chimichanga", 1349), ("Fajitas", 1699)]),
        ],
        ingredients: &["corn tortillas", "pico de gallo", "cilantro", "lime", "cotija", "black beans", "salsa verde", "pickled onions"],
        sizes: &[("Regular", 0), ("Grande", 350)],
        extras: &[("Guacamole", 200), ("Sour cream", 100), ("Extra cheese", 100), ("Jalapeños", 75)],
        removals: &["No onions", "No cilantro", "No beans"],
        spicy: true,
        prep: (10, 20),
        bakery_hours: false,
    },
    CuisineDef {
        tag: "chinese",
        weight: 9,
        name_first: &["Golden", "Jade", "Dragon", "Lucky", "Peking", "Szechuan", "Red Lantern", "Panda"],
        name_second: &["Palace", "Garden", "Wok", "Dumpling House", "Kitchen", "Noodle Bar"],
        categories: &[
            ("Mains", &[("Kung Pao Chicken", 1299), ("General Tso's Chicken", 1299), ("Sweet & Sour Pork", 1249), ("Beef with Broccoli", 1399), ("Mapo Tofu", 1149), ("Orange Chicken", 1249), ("Peking Duck", 2499)]),
            ("Dumplings", &[("Pork Dumplings", 899), ("Shrimp Har Gow", 949), ("Xiao Long Bao", 1049), ("Veggie Dumplings", 849), ("Pan-fried Potstickers", 899)]),
            ("Noodles & Rice", &[("Chow Mein", 1099), ("Dan Dan Noodles", 1149), ("Yangzhou Fried Rice", 1049), ("Beef Chow Fun", 1249)]),
            ("Starters", &[("Egg Rolls", 549), ("Hot & Sour Soup", 599), ("Wonton Soup", 649), ("Scallion Pancake", 599), ("Salt & Pepper Squid", 999)]),
        ],
        ingredients: &["soy sauce", "ginger", "scallions", "Sichuan pepper", "garlic", "bok choy", "hoisin", "sesame oil"],
        sizes: &[("Regular", 0), ("Large", 400)],
        extras: &[("Extra chicken", 300), ("Extra shrimp", 400), ("Chili oil", 50), ("Steamed rice", 200)],
        removals: &["No MSG", "No peanuts", "No scallions"],
        spicy: true,
        prep: (10, 20),
        bakery_hours: false,
    },
    CuisineDef {
        tag: "italian",
        weight: 8,
        name_first: &["Trattoria", "Osteria", "Ristorante", "Casa", "Il Forno", "Nonna's", "La Dolce"],
        name_second: &["Roma", "Toscana", "Vita", "Bella", "Milano", "Sorrento"],
        categories: &[
            ("Pasta", &[("Spaghetti Carbonara", 1499), ("Fettuccine Alfredo", 1449), ("Penne Arrabbiata", 1299), ("Lasagna", 1599), ("Tagliatelle Bolognese", 1549), ("Linguine alle Vongole", 1799), ("Gnocchi Sorrentina", 1449)]),
            ("Secondi", &[("Chicken Parmigiana", 1799), ("Veal Marsala", 2199), ("Salmon Piccata", 2099), ("Eggplant Parmigiana", 1599)]),
            ("Antipasti", &[("Arancini", 899), ("Calamari Fritti", 1099), ("Burrata", 1249), ("Minestrone", 799), ("Carpaccio", 1299)]),
            ("Risotto", &[("Mushroom Risotto", 1599), ("Seafood Risotto", 1999), ("Risotto Milanese", 1549)]),
        ],
        ingredients: &["parmigiano", "pecorino", "fresh pasta", "basil", "garlic", "white wine", "olive oil", "pancetta", "tomato sauce"],
        sizes: &[("Regular", 0), ("Large", 500)],
        extras: &[("Extra parmesan", 100), ("Grilled chicken", 400), ("Meatballs", 450), ("Truffle oil", 300)],
        removals: &["No garlic", "No onions", "No cheese"],
        spicy: false,
        prep: (15, 30),
        bakery_hours: false,
    },
    CuisineDef {
        tag: "vegan",
        weight: 5,
        name_first: &["Green", "Plant", "Leaf &", "Sprout", "Root", "Good Earth", "Sunflower"],
        name_second: &["Kitchen", "Bowl", "Eatery", "Cafe", "Table"],
        categories: &[
            ("Bowls", &[("Buddha Bowl", 1299), ("Falafel Bowl", 1199), ("Teriyaki Tofu Bowl", 1249), ("Quinoa Power Bowl", 1299), ("Burrito Bowl", 1199)]),
            ("Burgers & Wraps", &[("Beyond Burger", 1399), ("Chickpea Wrap", 1049), ("Jackfruit BBQ Sandwich", 1199), ("Tempeh Reuben", 1249)]),
            ("Salads", &[("Kale Caesar", 1099), ("Rainbow Salad", 1049), ("Roasted Beet Salad", 1099)]),
            ("Small Plates", &[("Sweet Potato Wedges", 599), ("Cauliflower Wings", 899), ("Hummus Plate", 799), ("Lentil Soup", 699)]),
        ],
        ingredients: &["quinoa", "kale", "chickpeas", "tahini", "avocado", "roasted vegetables", "tofu", "seeds", "lemon"],
        sizes: &[("Regular", 0), ("Large", 350)],
        extras: &[("Avocado", 200), ("Extra tofu", 250), ("Vegan cheese", 150), ("Hummus", 150)],
        removals: &["No onions", "No garlic", "No nuts"],
        spicy: false,
        prep: (10, 20),
        bakery_hours: false,
    },
    CuisineDef {
        tag: "bakery",
        weight: 5,
        name_first: &["Golden Crust", "Flour &", "Morning", "Le Petit", "Rise", "Sweet", "Crumb"],
        name_second: &["Bakery", "Boulangerie", "Bake Shop", "Patisserie", "Bread Co."],
        categories: &[
            ("Breads", &[("Sourdough Loaf", 699), ("Baguette", 399), ("Multigrain Loaf", 749), ("Focaccia", 599), ("Rye Bread", 649)]),
            ("Pastries", &[("Croissant", 349), ("Pain au Chocolat", 399), ("Almond Croissant", 449), ("Cinnamon Roll", 449), ("Danish", 399), ("Blueberry Muffin", 349), ("Scone", 329)]),
            ("Sandwiches", &[("Ham & Cheese Croissant", 799), ("Caprese Sandwich", 849), ("Turkey Club", 949), ("Egg Salad Sandwich", 749)]),
            ("Cakes", &[("Carrot Cake Slice", 549), ("Cheesecake Slice", 599), ("Chocolate Cake Slice", 549), ("Lemon Tart", 499)]),
        ],
        ingredients: &["butter", "flour", "sourdough starter", "almonds", "dark chocolate", "vanilla", "seasonal fruit", "sea salt"],
        sizes: &[("Single", 0), ("Box of 4", 900)],
        extras: &[("Warmed up", 0), ("Extra butter", 50), ("Jam", 75)],
        removals: &["No nuts", "No seeds"],
        spicy: false,
        prep: (5, 12),
        bakery_hours: true,
    },
    CuisineDef {
        tag: "korean",
        weight: 5,
        name_first: &["Seoul", "Gangnam", "Kimchi", "Bibim", "Hanok", "K-Town", "Arirang"],
        name_second: &["BBQ", "Kitchen", "Fried Chicken", "Table", "House"],
        categories: &[
            ("Mains", &[("Bibimbap", 1399), ("Bulgogi", 1599), ("Japchae", 1299), ("Kimchi Jjigae", 1299), ("Dak Galbi", 1499), ("Galbi", 1899)]),
            ("Korean Fried Chicken", &[("Yangnyeom Chicken", 1599), ("Soy Garlic Chicken", 1599), ("Honey Butter Chicken", 1649), ("Original Crispy Chicken", 1499)]),
            ("Starters", &[("Kimchi Pancake", 899), ("Tteokbokki", 999), ("Mandu", 849), ("Korean Corn Dog", 699), ("Gimbap", 899)]),
            ("Soups", &[("Sundubu Jjigae", 1349), ("Seolleongtang", 1399), ("Yukgaejang", 1399)]),
        ],
        ingredients: &["gochujang", "sesame oil", "kimchi", "short grain rice", "scallions", "garlic", "soy", "perilla"],
        sizes: &[("Regular", 0), ("Large", 450)],
        extras: &[("Fried egg", 150), ("Extra kimchi", 100), ("Cheese", 150), ("Rice cakes", 200)],
        removals: &["No sesame", "No scallions", "No egg"],
        spicy: true,
        prep: (12, 25),
        bakery_hours: false,
    },
    CuisineDef {
        tag: "mediterranean",
        weight: 6,
        name_first: &["Olive", "Aegean", "Levant", "Cedar", "Santorini", "Zaatar", "Byblos"],
        name_second: &["Grill", "Kitchen", "Mezze", "Taverna", "House"],
        categories: &[
            ("Wraps & Plates", &[("Chicken Shawarma Plate", 1399), ("Lamb Gyro", 1299), ("Falafel Wrap", 999), ("Chicken Souvlaki", 1349), ("Mixed Grill Plate", 1899), ("Beef Kofta Plate", 1499)]),
            ("Mezze", &[("Hummus", 699), ("Baba Ganoush", 749), ("Tabbouleh", 699), ("Stuffed Grape Leaves", 749), ("Halloumi Fries", 849), ("Spanakopita", 799)]),
            ("Salads", &[("Greek Salad", 999), ("Fattoush", 949)]),
            ("Sides", &[("Pita Bread", 249), ("Seasoned Rice", 399), ("Garlic Fries", 499)]),
        ],
        ingredients: &["tahini", "lemon", "garlic sauce", "sumac", "parsley", "pita", "feta", "olive oil", "pickled turnips"],
        sizes: &[("Regular", 0), ("Large", 400)],
        extras: &[("Extra meat", 350), ("Feta", 150), ("Hummus side", 200), ("Garlic sauce", 75)],
        removals: &["No onions", "No tomato", "No garlic sauce"],
        spicy: false,
        prep: (10, 20),
        bakery_hours: false,
    },
    CuisineDef {
        tag: "vietnamese",
        weight: 5,
        name_first: &["Pho", "Saigon", "Hanoi", "Little", "Mekong", "Lotus", "Golden Star"],
        name_second: &["Kitchen", "Noodle House", "Pho Bar", "Bistro", "Banh Mi"],
        categories: &[
            ("Pho", &[("Pho Bo", 1299), ("Pho Ga", 1249), ("Pho Tai Nam", 1349), ("Vegetable Pho", 1149)]),
            ("Banh Mi", &[("Grilled Pork Banh Mi", 899), ("Lemongrass Chicken Banh Mi", 899), ("Tofu Banh Mi", 849), ("Meatball Banh Mi", 899)]),
            ("Rice & Vermicelli", &[("Bun Cha", 1299), ("Com Tam", 1349), ("Bun Bo Hue", 1349), ("Lemongrass Tofu Vermicelli", 1199)]),
            ("Starters", &[("Fresh Spring Rolls", 699), ("Crispy Imperial Rolls", 699), ("Chicken Wings", 899), ("Papaya Salad", 799)]),
        ],
        ingredients: &["rice noodles", "star anise", "fresh herbs", "lime", "pickled carrots", "lemongrass", "nuoc cham", "bean sprouts"],
        sizes: &[("Regular", 0), ("Large", 350)],
        extras: &[("Extra beef", 300), ("Extra noodles", 200), ("Fried egg", 150), ("Pâté", 100)],
        removals: &["No cilantro", "No jalapeños", "No bean sprouts"],
        spicy: true,
        prep: (10, 20),
        bakery_hours: false,
    },
];

#[rustfmt::skip]
pub(crate) const DRINKS: &[Item] = &[
    ("Coca-Cola", 249), ("Diet Coke", 249), ("Sprite", 249), ("Sparkling Water", 249),
    ("Still Water", 199), ("Iced Tea", 299), ("Lemonade", 349), ("Ginger Ale", 249),
    ("Orange Juice", 399), ("Cold Brew Coffee", 449), ("Kombucha", 499), ("Mango Lassi", 449),
];

#[rustfmt::skip]
pub(crate) const DESSERTS: &[Item] = &[
    ("Chocolate Brownie", 449), ("Cheesecake", 599), ("Tiramisu", 649), ("Ice Cream Scoop", 349),
    ("Apple Pie", 499), ("Mochi", 549), ("Churros", 499), ("Baklava", 499),
];

pub(crate) const DRINK_SIZES: &[(&str, i64)] = &[("Can", 0), ("Large bottle", 150)];
pub(crate) const SPICE_LEVELS: &[&str] = &["Mild", "Medium", "Hot", "Extra hot"];
pub(crate) const VARIANT_PREFIXES: &[&str] = &[
    "House",
    "Chef's",
    "Deluxe",
    "Classic",
    "Signature",
    "Double",
    "Vegan",
    "Mini",
    "Family",
];

#[rustfmt::skip]
pub(crate) const STREETS: &[&str] = &[
    "Main", "Oak", "Maple", "Park", "Cedar", "Elm", "Washington", "Lake", "Hill", "Pine", "Church",
    "Market", "River", "Mill", "Station", "Bridge", "King", "Queen", "High", "Garden", "Harbor",
    "Union", "Spring", "Chestnut", "Willow", "Victoria", "Broad", "Canal", "College", "Meadow",
];
pub(crate) const STREET_KINDS: &[&str] = &["St", "Ave", "Rd", "Blvd", "Lane", "Way", "Plaza"];
