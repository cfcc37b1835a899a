module fakesuite

go 1.26
