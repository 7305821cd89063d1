"""Money: invoices, late fees, boleto, PIX, CPF/CNPJ, payments and bank return files."""
