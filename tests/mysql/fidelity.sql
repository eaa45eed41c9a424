-- A schema with what real applications use, for MySQL/MariaDB round trips: views over
-- views, procedures and functions, triggers (two with an explicit order), an event,
-- AUTO_INCREMENT counters, ENUM/SET, JSON, generated and invisible columns, DECIMAL,
-- fractional DATETIME/TIMESTAMP/TIME, BIT, identifiers that need quoting, a foreign key,
-- a non-transactional table, and stored-program text that looks like dump headings.
-- Rows with binary values are added by the fixture (tests/mysql/conftest.py).

CREATE TABLE `customers` (
  `id` INT UNSIGNED NOT NULL AUTO_INCREMENT,
  `name` VARCHAR(100) NOT NULL,
  `nickname` VARCHAR(50) NULL,
  `email` VARCHAR(255) NOT NULL,
  `status` ENUM('active','suspended','closed') NOT NULL DEFAULT 'active',
  `tags` SET('vip','newsletter','beta','staff') NOT NULL DEFAULT '',
  `profile` JSON NULL,
  `balance` DECIMAL(15,4) NOT NULL DEFAULT 0,
  `ratio` DOUBLE NULL,
  `score` FLOAT NULL,
  `created_at` DATETIME(6) NOT NULL,
  `updated_at` TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  `birthday` DATE NULL,
  `wake_up` TIME(2) NULL,
  `since` YEAR NULL,
  `flags` BIT(5) NULL,
  `big` BIGINT NULL,
  `secret` VARCHAR(20) INVISIBLE NULL,
  `note` TEXT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `email` (`email`)
) ENGINE=InnoDB AUTO_INCREMENT=1000 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='customers: ünïcödé 🙂';

CREATE TABLE `order lines` (
  `line id` BIGINT NOT NULL AUTO_INCREMENT,
  `customer-id` INT UNSIGNED NOT NULL,
  `select` VARCHAR(60) NOT NULL,
  `qty` SMALLINT NOT NULL,
  `price` DECIMAL(10,2) NOT NULL,
  `total` DECIMAL(12,2) AS (`qty` * `price`) STORED,
  `half` DECIMAL(12,2) AS (`price` / 2) VIRTUAL,
  PRIMARY KEY (`line id`),
  KEY `by customer` (`customer-id`),
  CONSTRAINT `fk lines customer` FOREIGN KEY (`customer-id`) REFERENCES `customers` (`id`) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `blobs` (
  `id` INT NOT NULL PRIMARY KEY,
  `data` LONGBLOB NULL,
  `tiny` VARBINARY(255) NULL,
  `fixed` BINARY(4) NULL
) ENGINE=InnoDB;

CREATE TABLE `weird``name"with'quotes; -- and more` (
  `a``b` INT NOT NULL PRIMARY KEY,
  `c;d` VARCHAR(40) NULL,
  `café` VARCHAR(40) NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE `line
break ``tick``` (`id` INT NOT NULL PRIMARY KEY, `v` VARCHAR(10) NULL) ENGINE=InnoDB;
INSERT INTO `line
break ``tick``` VALUES (1, 'x'), (2, NULL);

CREATE TABLE `empty_table` (`id` INT NOT NULL PRIMARY KEY) ENGINE=InnoDB;

CREATE TABLE `audit_log` (
  `id` INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `msg` VARCHAR(200) NOT NULL,
  `at` DATETIME(6) NOT NULL
) ENGINE=MyISAM DEFAULT CHARSET=utf8mb4;

CREATE VIEW `customer_totals` AS
  SELECT c.`id`, c.`name`, COUNT(l.`line id`) AS `lines`, COALESCE(SUM(l.`total`), 0) AS `spent`
  FROM `customers` c LEFT JOIN `order lines` l ON l.`customer-id` = c.`id`
  GROUP BY c.`id`, c.`name`;

CREATE VIEW `big spenders` AS
  SELECT `id`, `name`, `spent`, 'a;b -- not a comment' AS `label` FROM `customer_totals` WHERE `spent` > 100;

DELIMITER ;;
CREATE TRIGGER `customers_email_lower` BEFORE INSERT ON `customers` FOR EACH ROW
BEGIN
  SET NEW.`email` = LOWER(NEW.`email`);
END;;
CREATE TRIGGER `customers_note_default` BEFORE INSERT ON `customers` FOR EACH ROW FOLLOWS `customers_email_lower`
BEGIN
  IF NEW.`note` IS NULL AND NEW.`nickname` = 'trigger-test' THEN
    SET NEW.`note` = 'set by trigger; -- 🙂';
  END IF;
END;;
CREATE TRIGGER `lines_audit` AFTER INSERT ON `order lines` FOR EACH ROW
  INSERT INTO `audit_log` (`msg`, `at`) VALUES (CONCAT('line ', NEW.`line id`, ' for ', NEW.`customer-id`), '2024-01-01 00:00:00.000001');;
CREATE PROCEDURE `add_line`(IN p_customer INT UNSIGNED, IN p_qty SMALLINT, IN p_price DECIMAL(10,2))
  MODIFIES SQL DATA
  COMMENT 'adds an order line; emoji 🎉'
BEGIN
  -- Table structure for table `not_a_table` (a comment that looks like a dump heading)
  DECLARE msg VARCHAR(100) DEFAULT 'quote '' and semicolon ; inside';
  INSERT INTO `order lines` (`customer-id`, `select`, `qty`, `price`) VALUES (p_customer, msg, p_qty, p_price);
END;;
CREATE FUNCTION `with_tax`(amount DECIMAL(12,2)) RETURNS DECIMAL(12,2)
  DETERMINISTIC
  RETURN ROUND(amount * 1.19, 2);;
CREATE EVENT `purge_audit` ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DISABLE
  COMMENT 'keeps a month'
  DO DELETE FROM `audit_log` WHERE `at` < NOW() - INTERVAL 30 DAY;;
DELIMITER ;
